"""The audit log: append-only, hash-chained entries in the app database (who did what, from where, how it went).

Each entry's hash is sha256 over the previous entry's hash and a canonical encoding of the entry, so
editing, removing or reordering any entry breaks the chain from there on; `verify()` finds the first
break. Appending holds the database's write lock (BEGIN IMMEDIATE) from reading the last hash to
inserting, so two processes never fork the chain. SQL triggers refuse UPDATE and DELETE on the table,
and an INSERT whose seq is not past the last one: `INSERT OR REPLACE` (or `REPLACE INTO`) on an
existing seq would otherwise delete the old row without firing the DELETE trigger.

The documented action names are in core/audit_actions.py; the command line (verify, export, tail) is
core/audit_cli.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from datetime import UTC, date, datetime, time
from pathlib import Path

from core.csvsafe import rows_to_csv
from core.db import open_db, write
from core.storage import Storage

OUTCOMES = ("ok", "refused", "error")
ANONYMOUS = "-"
GENESIS = "0" * 64
ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
LIMITS = {"actor": 64, "address": 64, "action": 64, "object": 200, "detail": 500}
DEFAULT_LIMIT = 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq        INTEGER PRIMARY KEY,      -- 1, 2, 3 ... without gaps
    at         TEXT NOT NULL,            -- UTC, ISO 8601 with microseconds: sorts as text
    actor      TEXT NOT NULL,
    address    TEXT NOT NULL,
    action     TEXT NOT NULL,
    object     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, seq);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_append_only BEFORE INSERT ON audit_log
WHEN NEW.seq IS NULL OR NEW.seq <= (SELECT COALESCE(MAX(seq), 0) FROM audit_log)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: seq must follow the last entry'); END;
"""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    address: str
    action: str
    object: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str


COLUMNS = tuple(f.name for f in fields(AuditEntry))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int  # entries read (up to and including the first broken one)
    broken_seq: int | None = None  # the first entry where the chain does not hold
    reason: str = ""
    head: str = GENESIS  # hash of the last entry read: note it elsewhere to detect truncation later

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} entries, head {self.head}"
        return f"audit chain broken at entry #{self.broken_seq}: {self.reason} ({self.checked} entries read)"


def canonical(seq: int, at: str, actor: str, address: str, action: str, obj: str, outcome: str, detail: str) -> bytes:
    """The bytes an entry's hash covers besides the previous hash: JSON with sorted keys, no spaces."""
    return json.dumps(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "address": address,
            "action": action,
            "object": obj,
            "outcome": outcome,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def entry_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()


def _clean(field: str, value: object) -> str:
    """Single line, printable, bounded: a user name typed at the login form must not forge log lines."""
    text = "".join(c if c.isprintable() else "\ufffd" for c in str(value))
    limit = LIMITS[field]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utc_text(moment: datetime | date | str) -> str:
    """A bound for `at` comparisons, in the stored format (naive datetimes are taken as UTC)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time.min)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


_READY: set[Path] = set()  # databases whose schema this process has already ensured


class AuditLog:
    def __init__(self, storage: Storage) -> None:
        self.path = storage.app_db
        if self.path not in _READY:
            with open_db(self.path) as db:
                db.executescript(SCHEMA)
            _READY.add(self.path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with open_db(self.path) as db:
            yield db

    def record(
        self,
        actor: str | None,
        action: str,
        obj: object = "",
        outcome: str = "ok",
        address: str | None = None,
        detail: object = "",
    ) -> AuditEntry:
        """Append one entry; returns it with its sequence number and hash. Raises ValueError for an
        action that is not a dotted lower-case name or an unknown outcome (a programming error)."""
        if not ACTION_RE.match(action) or len(action) > LIMITS["action"]:
            raise ValueError(f"audit action must be a dotted lower-case name, got {action!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        actor_text = _clean("actor", actor) if actor else ANONYMOUS
        address_text = _clean("address", address) if address else ANONYMOUS
        obj_text, detail_text = _clean("object", obj), _clean("detail", detail)
        with self._db() as db, write(db):
            last = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
            at = datetime.now(UTC).isoformat(timespec="microseconds")  # under the lock: time follows seq
            digest = entry_hash(prev, canonical(seq, at, actor_text, address_text, action, obj_text, outcome, detail_text))
            entry = AuditEntry(seq, at, actor_text, address_text, action, obj_text, outcome, detail_text, prev, digest)
            db.execute(f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", astuple(entry))
        return entry

    def query(
        self,
        actor: str | None = None,
        action_prefix: str | None = None,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        outcome: str | None = None,
        limit: int | None = DEFAULT_LIMIT,
    ) -> list[AuditEntry]:
        """Entries newest first. `since` is inclusive, `until` exclusive; `action_prefix` is a plain
        prefix ("login" matches login.success and login.failure). limit=None returns all."""
        where: list[str] = []
        args: list[str | int] = []
        if actor:
            where.append("actor = ?")
            args.append(actor)
        if action_prefix:
            where.append("substr(action, 1, ?) = ?")
            args += [len(action_prefix), action_prefix]
        if since is not None:
            where.append("at >= ?")
            args.append(_utc_text(since))
        if until is not None:
            where.append("at < ?")
            args.append(_utc_text(until))
        if outcome:
            where.append("outcome = ?")
            args.append(outcome)
        sql = "SELECT * FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        with self._db() as db:
            return [AuditEntry(**dict(row)) for row in db.execute(sql, args)]

    def actors(self, limit: int = 500) -> list[str]:
        """Distinct actors, for a filter's choices."""
        with self._db() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT actor FROM audit_log ORDER BY actor LIMIT ?", (limit,))]

    def count(self) -> int:
        with self._db() as db:
            return db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]

    def verify(self) -> VerifyResult:
        """Walk the whole chain in order: sequence without gaps, each prev_hash the previous hash, each
        hash recomputed. Stops at the first break."""
        prev, expected, checked = GENESIS, 1, 0
        with self._db() as db:
            for row in db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY seq"):
                e = AuditEntry(*row)
                checked += 1
                if e.seq != expected:
                    missing = f"entry #{expected} is" if e.seq == expected + 1 else f"entries #{expected} to #{e.seq - 1} are"
                    reason = f"{missing} missing (deleted?)" if e.seq > expected else f"sequence number {e.seq} out of order"
                    return VerifyResult(False, checked, expected, reason, prev)
                if e.prev_hash != prev:
                    return VerifyResult(False, checked, e.seq, "prev_hash does not match the previous entry's hash", prev)
                body = canonical(e.seq, e.at, e.actor, e.address, e.action, e.object, e.outcome, e.detail)
                if entry_hash(prev, body) != e.hash:
                    return VerifyResult(False, checked, e.seq, "hash does not match the entry (edited?)", prev)
                prev, expected = e.hash, expected + 1
        return VerifyResult(True, checked, None, "", prev)

    @staticmethod
    def export_csv(entries: list[AuditEntry]) -> bytes:
        """Entries as CSV (in the order given), formula-safe for spreadsheets. Cells that start with
        = + - @ get a leading quote, so recompute hashes from the database, not from this file."""
        return rows_to_csv(COLUMNS, (astuple(e) for e in entries))
