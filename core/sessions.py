"""Signing in: server-side sessions (a random id in the cookie, its hash in the app database) and
throttling of failed attempts per user name and per client address, kept in the same database."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.accounts import SCHEMA as ACCOUNTS_SCHEMA
from core.accounts import Accounts, User
from core.db import open_db, write
from core.storage import Storage

SESSION_COOKIE = "traineasy_session"
TOUCH_EVERY = timedelta(minutes=1)  # last_seen is written at most this often per session

# A name may fail FREE_FAILURES times; each further failure locks it for twice as long as the last.
# An address (a whole office behind one NAT) gets more room before it is locked.
FREE_FAILURES = {"user": 5, "addr": 20}
FIRST_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=30)
FORGET_AFTER = timedelta(hours=1)  # failures older than this no longer count
CHECK_HOLD = timedelta(seconds=5)  # a crashed check frees its name after this at the latest

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    token_hash  TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    revoked_at  TEXT,
    address     TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL DEFAULT 'web'   -- web: the browser; codec: an admin's CLI decode token
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
CREATE TABLE IF NOT EXISTS login_failures (
    key           TEXT PRIMARY KEY,       -- 'user:<name>' or 'addr:<address>'
    failures      INTEGER NOT NULL,
    last_failure  TEXT NOT NULL,
    locked_until  TEXT,
    checking_until TEXT                   -- one password check at a time per name: no parallel guessing
);
"""


def _now() -> datetime:
    return datetime.now(UTC)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _init(storage: Storage) -> None:
    with open_db(storage.app_db) as db:
        db.executescript(ACCOUNTS_SCHEMA + SCHEMA)


class Sessions:
    def __init__(self, storage: Storage, lifetime: timedelta) -> None:
        self.storage, self.lifetime = storage, lifetime
        _init(storage)

    def create(self, name: str, address: str = "", kind: str = "web") -> str:
        token = secrets.token_urlsafe(32)
        now = _now()
        with open_db(self.storage.app_db) as db:
            db.execute(
                "INSERT INTO sessions (token_hash, username, created_at, expires_at, last_seen, address, kind) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_hash(token), name, now.isoformat(), (now + self.lifetime).isoformat(), now.isoformat(), address[:64], kind),
            )
        return token

    def user(self, token: str | None, kinds: tuple[str, ...] = ("web",)) -> User | None:
        """The signed-in user of a cookie value: None if unknown, expired, revoked, of another kind (a CLI
        decode token is no browser session) or the account is disabled."""
        if not token or len(token) > 128:
            return None
        now = _now()
        with open_db(self.storage.app_db) as db:
            row = db.execute(
                "SELECT s.token_hash, s.expires_at, s.last_seen, s.kind, u.name, u.role FROM sessions s "
                "JOIN users u ON u.name = s.username WHERE s.token_hash = ? AND s.revoked_at IS NULL "
                "AND u.disabled = 0",
                (_hash(token),),
            ).fetchone()
            if row is not None and row["kind"] not in kinds:
                return None
            if row is None or datetime.fromisoformat(row["expires_at"]) <= now:
                return None
            if now - datetime.fromisoformat(row["last_seen"]) >= TOUCH_EVERY:
                db.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now.isoformat(), row["token_hash"]))
        return User(row["name"], (row["role"],))

    def revoke(self, token: str | None) -> None:
        if token:
            with open_db(self.storage.app_db) as db:
                db.execute(
                    "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                    (_now().isoformat(), _hash(token)),
                )

    def revoke_user(self, name: str, keep: str | None = None) -> int:
        """End every session of a user (all but `keep`, the caller's own, when changing a password)."""
        with open_db(self.storage.app_db) as db:
            cur = db.execute(
                "UPDATE sessions SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL AND token_hash != ?",
                (_now().isoformat(), name, _hash(keep) if keep else ""),
            )
        return cur.rowcount


class LoginThrottle:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        _init(storage)

    @staticmethod
    def _keys(name: str, address: str) -> list[str]:
        return [f"user:{name[:64]}", *([f"addr:{address[:64]}"] if address else [])]

    def begin(self, name: str, address: str) -> tuple[str, datetime] | None:
        """Before a password check: ("locked", until) or ("busy", until) to refuse it, else None, having
        atomically claimed the name's one check-at-a-time slot (parallel guesses would otherwise all be
        checked before the first failure is counted)."""
        now = _now()
        keys = self._keys(name, address)
        with open_db(self.storage.app_db) as db, write(db):
            rows = db.execute(
                f"SELECT key, locked_until, checking_until FROM login_failures WHERE key IN ({','.join('?' * len(keys))})", keys
            ).fetchall()
            locks = [datetime.fromisoformat(r["locked_until"]) for r in rows if r["locked_until"]]
            if (lock := max((t for t in locks if t > now), default=None)) is not None:
                return "locked", lock
            checking = next((r["checking_until"] for r in rows if r["key"] == keys[0] and r["checking_until"]), None)
            if checking and datetime.fromisoformat(checking) > now:
                return "busy", datetime.fromisoformat(checking)
            db.execute(
                "INSERT INTO login_failures (key, failures, last_failure, checking_until) VALUES (?, 0, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET checking_until = excluded.checking_until",
                (keys[0], now.isoformat(), (now + CHECK_HOLD).isoformat()),
            )
        return None

    def unlock(self, name: str) -> bool:
        """An admin lifts a name's lock (someone guessing at the admin's name must not lock them out)."""
        with open_db(self.storage.app_db) as db:
            return db.execute("DELETE FROM login_failures WHERE key = ?", (f"user:{name[:64]}",)).rowcount > 0

    def locked_names(self) -> dict[str, datetime]:
        now = _now()
        with open_db(self.storage.app_db) as db:
            rows = db.execute(
                "SELECT key, locked_until FROM login_failures WHERE key LIKE 'user:%' AND locked_until IS NOT NULL"
            ).fetchall()
        return {r["key"][5:]: t for r in rows if (t := datetime.fromisoformat(r["locked_until"])) > now}

    def failure(self, name: str, address: str) -> datetime | None:
        """Count a failed attempt; returns the end of the lock it triggers, if any."""
        now = _now()
        locks = []
        with open_db(self.storage.app_db) as db, write(db):
            for key in self._keys(name, address):
                row = db.execute("SELECT failures, last_failure FROM login_failures WHERE key = ?", (key,)).fetchone()
                fresh = row is not None and now - datetime.fromisoformat(row["last_failure"]) < FORGET_AFTER
                failures = (row["failures"] if fresh else 0) + 1
                excess = failures - FREE_FAILURES[key.split(":", 1)[0]]
                lock = None
                if excess > 0:
                    lock = now + min(MAX_LOCK, FIRST_LOCK * 2 ** min(excess - 1, 16))
                    locks.append(lock)
                db.execute(
                    "INSERT OR REPLACE INTO login_failures (key, failures, last_failure, locked_until, "
                    "checking_until) VALUES (?, ?, ?, ?, NULL)",
                    (key, failures, now.isoformat(), lock.isoformat() if lock else None),
                )
        return max(locks, default=None)

    def release(self, name: str) -> None:
        with open_db(self.storage.app_db) as db:
            db.execute("UPDATE login_failures SET checking_until = NULL WHERE key = ?", (f"user:{name[:64]}",))

    def success(self, name: str) -> None:
        """A right password clears the name's count (not the address's: one good account must not
        reset the guessing budget of an address trying many names)."""
        with open_db(self.storage.app_db) as db:
            db.execute("DELETE FROM login_failures WHERE key = ?", (f"user:{name[:64]}",))


@dataclass(frozen=True)
class SignIn:
    """The outcome of one attempt: a session token, or a message for the form."""

    token: str | None
    user: User | None
    message: str = ""
    locked_until: datetime | None = None


WRONG = "Wrong user name or password."


def wait_text(until: datetime) -> str:
    seconds = max(1, math.ceil((until - _now()).total_seconds()))
    span = f"{seconds} s" if seconds < 90 else f"{math.ceil(seconds / 60)} min"
    return f"Too many failed sign-ins. Try again in {span} (at {until:%H:%M:%S} UTC)."


def sign_in(storage: Storage, lifetime: timedelta, name: str, password: str, address: str = "") -> SignIn:
    """Check the throttle, then the password; on success open a session."""
    name = (name or "").strip().lower()[:64]
    throttle = LoginThrottle(storage)
    refused = throttle.begin(name, address)
    if refused is not None:
        why, until = refused
        text = wait_text(until) if why == "locked" else "Another sign-in for this name is being checked; try again."
        return SignIn(None, None, text, until)
    try:
        account = Accounts(storage).verify_password(name, password or "")
    except BaseException:
        throttle.release(name)  # an error is no evidence of guessing: free the slot, count nothing
        raise
    if account is None:
        lock = throttle.failure(name, address)
        return SignIn(None, None, wait_text(lock) if lock else WRONG, lock)
    throttle.success(name)
    if account.disabled:
        return SignIn(None, None, "This account is disabled. Ask an administrator.")
    return SignIn(Sessions(storage, lifetime).create(name, address), account.user)
