"""Accounts in the app database: bcrypt password hashes, roles, disabling; demo accounts on first start."""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

import bcrypt

from core.db import open_db, write
from core.names import InvalidName, check_username
from core.storage import Storage, write_private

ROLES = ("admin", "user")
DEMO_ACCOUNTS = (("admin", "admin"), ("alice", "user"), ("bob", "user"))
MIN_PASSWORD = 10
MAX_PASSWORD = 128  # bcrypt reads 72 bytes; a longer limit only stops absurd inputs

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name        TEXT PRIMARY KEY,
    email       TEXT NOT NULL DEFAULT '',
    role        TEXT NOT NULL,
    pw_hash     TEXT NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    pw_changed  TEXT NOT NULL,
    last_login  TEXT
);
"""


class AccountError(ValueError):
    """A refused account change; the message is safe to show."""


@dataclass(frozen=True)
class User:
    """The acting user: every service call takes one and checks ownership against it."""

    name: str
    roles: tuple[str, ...] = ("user",)
    address: str = ""  # where the request came from, for the audit log

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True)
class Account:
    name: str
    email: str
    role: str
    disabled: bool
    created_at: str
    last_login: str | None

    @property
    def user(self) -> User:
        return User(self.name, (self.role,))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _secret(password: str) -> bytes:
    return password.encode()[:72]  # bcrypt reads 72 bytes (and bcrypt 5 refuses more)


def hash_password(password: str) -> str:
    return bcrypt.hashpw(_secret(password), bcrypt.gensalt()).decode()


def check_password_rules(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"Passwords need {MIN_PASSWORD} to {MAX_PASSWORD} characters.")
    return password


# Unknown names are checked against this hash, so that they cost the same time as known ones.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16)).encode()


class Accounts:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        with open_db(storage.app_db) as db:
            db.executescript(SCHEMA)
            if db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0:
                self._import_legacy(db)

    def _import_legacy(self, db: sqlite3.Connection) -> None:
        """Accounts from the credentials.json of earlier versions, hashes kept as they were."""
        path = self.storage.auth_dir / "credentials.json"
        if not path.is_file():
            return
        for name, acc in json.loads(path.read_text()).get("usernames", {}).items():
            role = (acc.get("roles") or ["user"])[0]
            db.execute(
                "INSERT OR IGNORE INTO users (name, email, role, pw_hash, created_at, pw_changed) VALUES (?, ?, ?, ?, ?, ?)",
                (name, acc.get("email") or "", role if role in ROLES else "user", acc["password"], _now(), _now()),
            )

    # --- reading -------------------------------------------------------------------------------
    def list(self) -> list[Account]:
        with open_db(self.storage.app_db) as db:
            rows = db.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [_account(r) for r in rows]

    def get(self, name: str) -> Account | None:
        with open_db(self.storage.app_db) as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return _account(row) if row else None

    def verify_password(self, name: str, password: str) -> Account | None:
        """The account if the password is right and the account enabled. Unknown names cost the same
        bcrypt check as known ones, so timing does not tell which names exist."""
        with open_db(self.storage.app_db) as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        stored = row["pw_hash"].encode() if row else _DUMMY_HASH
        ok = bcrypt.checkpw(_secret(password), stored)
        if not ok or row is None:
            return None
        with open_db(self.storage.app_db) as db:
            db.execute("UPDATE users SET last_login = ? WHERE name = ?", (_now(), name))
        return _account(row)

    # --- changing ------------------------------------------------------------------------------
    def add(self, name: str, password: str, role: str = "user", email: str = "") -> Account:
        try:
            check_username(name)
        except InvalidName as exc:
            raise AccountError(str(exc)) from None
        _check_role(role)
        hashed = hash_password(check_password_rules(password))
        with open_db(self.storage.app_db) as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AccountError(f"The user name {name!r} is taken.")
            db.execute(
                "INSERT INTO users (name, email, role, pw_hash, created_at, pw_changed) VALUES (?, ?, ?, ?, ?, ?)",
                (name, email[:200], role, hashed, _now(), _now()),
            )
        return self._existing(name)

    def set_password(self, name: str, password: str) -> None:
        self._existing(name)
        hashed = hash_password(check_password_rules(password))
        with open_db(self.storage.app_db) as db:
            db.execute("UPDATE users SET pw_hash = ?, pw_changed = ? WHERE name = ?", (hashed, _now(), name))

    def set_role(self, name: str, role: str) -> None:
        _check_role(role)
        self._existing(name)
        with open_db(self.storage.app_db) as db, write(db):
            if role != "admin":
                self._keep_an_admin(db, name)
            db.execute("UPDATE users SET role = ? WHERE name = ?", (role, name))

    def set_disabled(self, name: str, disabled: bool) -> None:
        self._existing(name)
        with open_db(self.storage.app_db) as db, write(db):
            if disabled:
                self._keep_an_admin(db, name)
            db.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))

    def _existing(self, name: str) -> Account:
        account = self.get(name) if isinstance(name, str) else None
        if account is None:
            raise AccountError(f"No user named {name!r}.")
        return account

    @staticmethod
    def _keep_an_admin(db: sqlite3.Connection, name: str) -> None:
        others = db.execute("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND name != ?", (name,)).fetchone()[
            0
        ]
        is_admin = db.execute("SELECT 1 FROM users WHERE name = ? AND role = 'admin' AND disabled = 0", (name,)).fetchone()
        if is_admin and others == 0:
            raise AccountError("That would leave no enabled administrator.")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"The role must be one of: {', '.join(ROLES)}.")


def _account(row: sqlite3.Row) -> Account:
    return Account(row["name"], row["email"], row["role"], bool(row["disabled"]), row["created_at"], row["last_login"])


def new_password() -> str:
    return secrets.token_urlsafe(12)


def bootstrap_demo_accounts(storage: Storage) -> dict[str, tuple[str, str]] | None:
    """On the first start only: one admin and two users with random passwords, noted in a 0600 file."""
    accounts = Accounts(storage)
    if accounts.list():
        return None
    created = {name: (role, new_password()) for name, role in DEMO_ACCOUNTS}
    for name, (role, password) in created.items():
        accounts.add(name, password, role, f"{name}@traineasy.local")
    lines = [
        "# TrainEasy demo accounts (created on first start). Change or remove them for real use.",
        *(f"{name}\t{role}\t{pw}" for name, (role, pw) in created.items()),
    ]
    write_private(storage.demo_accounts_file, "\n".join(lines) + "\n")
    return created


def read_demo_accounts(storage: Storage) -> dict[str, str]:
    path = storage.demo_accounts_file
    if not path.is_file():
        return {}
    rows = [line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {row[0]: row[2] for row in rows if len(row) == 3}
