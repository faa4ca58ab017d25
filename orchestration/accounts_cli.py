"""`python -m orchestration.accounts_cli`: manage accounts from a shell on the server (audited as cli:<login>).

list | add NAME [--role user|admin] [--email E] | disable NAME | enable NAME | reset NAME | role NAME ROLE
| unlock NAME (lift a lock left by failed sign-ins)
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from core.accounts import ROLES, AccountError, User
from core.config import load_settings
from orchestration.account_service import AccountService


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.accounts_cli", description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="storage root (default: TRAINEASY_HOME or ./var)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="all accounts")
    add = sub.add_parser("add", help="create an account and print its password")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="user")
    add.add_argument("--email", default="")
    for command, text in (
        ("disable", "disable and sign out"),
        ("enable", "re-enable"),
        ("reset", "set and print a new password, sign out"),
        ("unlock", "lift the lock left by failed sign-ins"),
    ):
        sub.add_parser(command, help=text).add_argument("name")
    role = sub.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    args = parser.parse_args(argv)
    if args.home:
        os.environ["TRAINEASY_HOME"] = args.home
    os.umask(0o077)
    service = AccountService(load_settings())
    actor = User(f"cli:{getpass.getuser()}", ("admin",), "local")
    try:
        if args.command == "list":
            for a in service.list_accounts(actor):
                print(f"{a.name:<24} {a.role:<6} {'disabled' if a.disabled else 'active':<9} {a.last_login or '-'}")
        elif args.command == "add":
            print(f"added {args.name}; password: {service.add_user(actor, args.name, args.role, args.email)}")
        elif args.command in ("disable", "enable"):
            service.set_disabled(actor, args.name, args.command == "disable")
            print(f"{args.name} {args.command}d")
        elif args.command == "unlock":
            service.unlock(actor, args.name)
            print(f"{args.name} may sign in again")
        elif args.command == "reset":
            print(f"new password for {args.name}: {service.reset_password(actor, args.name)}")
        else:
            service.set_role(actor, args.name, args.role)
            print(f"{args.name} is now {args.role}")
    except AccountError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
