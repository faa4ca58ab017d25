"""Per-user API tokens for the REST API: created and revoked by their owner on the Account page, shown once,
stored as the sha256 of the secret (a 256-bit random token needs no slow hash: it cannot be guessed from its
hash), with a name, creation time and last use, in the app database beside accounts and sessions."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.accounts import SCHEMA as ACCOUNTS_SCHEMA
from core.accounts import User
from core.db import open_db
from core.storage import Storage

PREFIX = "te_"  # tells a TrainEasy token apart in a config file or a secret scanner
MAX_NAME = 60  # characters of a token's name
MAX_TOKENS = 20  # live tokens per user: enough for every script, not a way to fill the database
TOUCH_EVERY = timedelta(minutes=1)  # last_used is written at most this often per token

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash  TEXT PRIMARY KEY,          -- sha256 of the secret; the secret itself is never stored
    token_id    TEXT NOT NULL UNIQUE,      -- a short public id, to name a token when revoking it
    username    TEXT NOT NULL REFERENCES users (name),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    last_used   TEXT,
    revoked_at  TEXT
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (username);
"""


class TokenError(ValueError):
    """A refused token change; the message is safe to show."""


@dataclass(frozen=True)
class ApiToken:
    """What the Account page lists of a token: never its secret."""

    token_id: str
    name: str
    created_at: str
    last_used: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def clean_name(name: str) -> str:
    """A token's name as stored: one line, trimmed, at most MAX_NAME characters; refused when empty."""
    text = " ".join(str(name or "").split())
    if not text:
        raise TokenError("Give the token a name, such as “nightly batch”, so that you know what to revoke later.")
    if len(text) > MAX_NAME:
        raise TokenError(f"A token's name has at most {MAX_NAME} characters.")
    return text


class ApiTokens:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        with open_db(storage.app_db) as db:
            db.executescript(ACCOUNTS_SCHEMA + SCHEMA)

    def create(self, username: str, name: str) -> tuple[ApiToken, str]:
        """A new token of `username`: its listing and its secret, which is shown once and never again."""
        name = clean_name(name)
        secret = PREFIX + secrets.token_urlsafe(32)
        token_id = secrets.token_hex(4)
        now = _now().isoformat(timespec="seconds")
        with open_db(self.storage.app_db) as db:
            live = db.execute("SELECT COUNT(*) FROM api_tokens WHERE username = ? AND revoked_at IS NULL", (username,))
            if live.fetchone()[0] >= MAX_TOKENS:
                raise TokenError(f"You have {MAX_TOKENS} tokens already; revoke one you no longer use first.")
            try:
                db.execute(
                    "INSERT INTO api_tokens (token_hash, token_id, username, name, created_at) VALUES (?, ?, ?, ?, ?)",
                    (token_hash(secret), token_id, username, name, now),
                )
            except sqlite3.IntegrityError:
                raise TokenError(f"No user named {username!r}.") from None
        return ApiToken(token_id, name, now, None), secret

    def list(self, username: str) -> list[ApiToken]:
        """The user's live tokens, newest first."""
        with open_db(self.storage.app_db) as db:
            rows = db.execute(
                "SELECT token_id, name, created_at, last_used FROM api_tokens WHERE username = ? AND revoked_at IS NULL "
                "ORDER BY created_at DESC, rowid DESC",
                (username,),
            ).fetchall()
        return [ApiToken(r["token_id"], r["name"], r["created_at"], r["last_used"]) for r in rows]

    def revoke(self, username: str, token_id: str) -> ApiToken:
        """Revoke one of the user's own tokens (another user's is "no such token"); at once, for every process."""
        with open_db(self.storage.app_db) as db:
            row = db.execute(
                "SELECT token_id, name, created_at, last_used FROM api_tokens WHERE username = ? AND token_id = ? "
                "AND revoked_at IS NULL",
                (username, str(token_id)),
            ).fetchone()
            if row is None:
                raise TokenError("No such token (it may be revoked already).")
            db.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_id = ?", (_now().isoformat(), row["token_id"]))
        return ApiToken(row["token_id"], row["name"], row["created_at"], row["last_used"])

    def revoke_all(self, username: str) -> int:
        """Revoke every live token of the user (a password changed or reset: whoever had the account had its
        tokens too); how many."""
        with open_db(self.storage.app_db) as db:
            done = db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL", (_now().isoformat(), username)
            )
            return int(done.rowcount)

    def user(self, secret: str | None) -> tuple[User, str] | None:
        """(the token's user, its id) for a bearer secret: None if unknown, revoked, or the account is disabled."""
        if not secret or len(secret) > 128 or not secret.startswith(PREFIX):
            return None
        now = _now()
        with open_db(self.storage.app_db) as db:
            row = db.execute(
                "SELECT t.token_hash, t.token_id, t.last_used, u.name, u.role FROM api_tokens t "
                "JOIN users u ON u.name = t.username WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled = 0",
                (token_hash(secret),),
            ).fetchone()
            if row is None:
                return None
            last = row["last_used"]
            if last is None or now - datetime.fromisoformat(last) >= TOUCH_EVERY:
                db.execute(
                    "UPDATE api_tokens SET last_used = ? WHERE token_hash = ?",
                    (now.isoformat(timespec="seconds"), row["token_hash"]),
                )
        return User(row["name"], (row["role"],)), row["token_id"]
