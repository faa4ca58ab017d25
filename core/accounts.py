"""Accounts and secrets: bcrypt credentials under the storage root, demo accounts on first start."""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass

import bcrypt

from core.names import check_username
from core.storage import Storage, write_private

ROLES = ("admin", "user")
DEMO_ACCOUNTS = (("admin", "admin"), ("alice", "user"), ("bob", "user"))


@dataclass(frozen=True)
class User:
    """The acting user: every service call takes one and checks ownership against it."""
    name: str
    roles: tuple[str, ...] = ("user",)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def credentials_path(storage: Storage):
    return storage.auth_dir / "credentials.json"


def load_credentials(storage: Storage) -> dict:
    path = credentials_path(storage)
    return json.loads(path.read_text()) if path.is_file() else {"usernames": {}}


def add_account(storage: Storage, name: str, password: str, role: str = "user") -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if len(password) < 8:
        raise ValueError("passwords need at least 8 characters")
    creds = load_credentials(storage)
    creds["usernames"][check_username(name)] = {
        "email": f"{name}@traineasy.local", "first_name": name.capitalize(), "last_name": "",
        "password": bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode(), "roles": [role],
    }
    write_private(credentials_path(storage), json.dumps(creds, indent=2))


def bootstrap_demo_accounts(storage: Storage) -> dict[str, tuple[str, str]] | None:
    """On the first start only: one admin and two users with random passwords, noted in a 0600 file."""
    if credentials_path(storage).is_file():
        return None
    created = {name: (role, secrets.token_urlsafe(12)) for name, role in DEMO_ACCOUNTS}
    for name, (role, password) in created.items():
        add_account(storage, name, password, role)
    lines = ["# TrainEasy demo accounts (created on first start). Change or remove them for real use.",
             *(f"{name}\t{role}\t{pw}" for name, (role, pw) in created.items())]
    write_private(storage.demo_accounts_file, "\n".join(lines) + "\n")
    return created


def read_demo_accounts(storage: Storage) -> dict[str, str]:
    path = storage.demo_accounts_file
    if not path.is_file():
        return {}
    rows = [line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {row[0]: row[2] for row in rows if len(row) == 3}


def cookie_key(storage: Storage) -> str:
    """The cookie-signing key: TRAINEASY_COOKIE_KEY, or generated once into a 0600 file."""
    if os.environ.get("TRAINEASY_COOKIE_KEY"):
        return os.environ["TRAINEASY_COOKIE_KEY"]
    path = storage.auth_dir / "cookie_key"
    if not path.is_file():
        write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()
