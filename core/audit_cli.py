"""`python -m core.audit_cli`: verify, export or read the audit log from a shell on the server.

Storage root from --home, else TRAINEASY_HOME, else the default of core.config:
    python -m core.audit_cli verify              exit 0 if intact, 1 with the first broken entry otherwise
    python -m core.audit_cli export [--since 2025-01-01] [--until ...] [--actor alice] [--action login] > audit.csv
    python -m core.audit_cli tail -n 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.audit import OUTCOMES, AuditEntry, AuditLog
from core.storage import Storage


def _line(e: AuditEntry) -> str:
    text = f"#{e.seq:<6} {e.at}  {e.outcome:<7} {e.actor}@{e.address}  {e.action}"
    return text + (f"  {e.object}" if e.object else "") + (f"  ({e.detail})" if e.detail else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.audit_cli", description="TrainEasy's audit log.")
    parser.add_argument("--home", type=Path, help="storage root (default: TRAINEASY_HOME or var/)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", type=Path, default=argparse.SUPPRESS, help="storage root")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", parents=[common], help="check the hash chain; exit 1 at the first broken entry")
    export = sub.add_parser("export", parents=[common], help="write entries as CSV to standard output, oldest first")
    export.add_argument("--since", help="ISO date or time (UTC unless an offset is given), inclusive")
    export.add_argument("--until", help="ISO date or time, exclusive")
    export.add_argument("--actor")
    export.add_argument("--action", help="action prefix, e.g. login or admin.")
    export.add_argument("--outcome", choices=OUTCOMES)
    tail = sub.add_parser("tail", parents=[common], help="print the last entries")
    tail.add_argument("-n", type=int, default=20)
    args = parser.parse_args(argv)

    if args.home is None:
        from core.config import load_settings

        args.home = load_settings().home
    if not (args.home / "app.db").is_file():
        print(f"no app database under {args.home}", file=sys.stderr)
        return 2
    audit = AuditLog(Storage(args.home.resolve()))
    if args.command == "verify":
        result = audit.verify()
        print(result, file=sys.stdout if result.ok else sys.stderr)
        return 0 if result.ok else 1
    if args.command == "export":
        try:
            entries = audit.query(
                actor=args.actor, action_prefix=args.action, since=args.since, until=args.until, outcome=args.outcome, limit=None
            )
        except ValueError as exc:
            parser.error(f"bad date: {exc}")
        sys.stdout.buffer.write(audit.export_csv(entries[::-1]))
        return 0
    for e in audit.query(limit=args.n)[::-1]:
        print(_line(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
