"""Per-user limits: the settings' defaults with an admin's overrides on top, kept in the app database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from core.config import Settings
from core.db import open_db, write
from core.names import check_username
from core.quota_limits import BOUNDS, LIMIT_FIELDS, LIMIT_LABELS, Limits
from core.storage import Storage

SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_overrides (
    owner               TEXT PRIMARY KEY,
    max_runs_in_flight  INTEGER,          -- NULL: the default from the settings
    launches_per_minute INTEGER,
    max_stored_mb       INTEGER,
    max_cells           INTEGER,
    tasks_per_minute    INTEGER,
    set_by              TEXT,
    set_at              TEXT NOT NULL
);
"""


class QuotaOverrides:
    """The limits each user has; `core.quotas.Quotas` adds the launch ledger they are checked against."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with open_db(self.storage.app_db) as db:
            yield db

    # --- limits ---------------------------------------------------------------------------------
    def defaults(self) -> Limits:
        return Limits.defaults(self.settings)

    def limits_for(self, user: str, db: sqlite3.Connection | None = None) -> Limits:
        """The user's limits: the settings' defaults, with the admin's overrides on top."""
        if db is None:
            with self._db() as own:
                return self.limits_for(user, own)
        row = db.execute("SELECT * FROM quota_overrides WHERE owner = ?", (check_username(user),)).fetchone()
        values = {name: getattr(self.settings, name) for name in LIMIT_FIELDS}
        overridden = set()
        for name in LIMIT_FIELDS:
            if row is not None and row[name] is not None:
                values[name] = row[name]
                overridden.add(name)
        return Limits(**values, overridden=frozenset(overridden))

    def set_override(self, user: str, set_by: str | None = None, **limits: int | None) -> Limits:
        """Override some limits of one user; a value of None puts that limit back to the default.
        Limits not named keep their current override. Raises ValueError for unknown names or values."""
        check_username(user)
        unknown = set(limits) - set(LIMIT_FIELDS)
        if unknown:
            raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        for name, value in limits.items():
            if value is None:
                continue
            low, high = BOUNDS[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{LIMIT_LABELS[name]} must be a whole number from {low:,} to {high:,}")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db() as db, write(db):
            db.execute("INSERT INTO quota_overrides (owner, set_at) VALUES (?, ?) ON CONFLICT(owner) DO NOTHING", (user, now))
            for name, value in limits.items():  # names checked against LIMIT_FIELDS above
                db.execute(f"UPDATE quota_overrides SET {name} = ? WHERE owner = ?", (value, user))
            db.execute("UPDATE quota_overrides SET set_by = ?, set_at = ? WHERE owner = ?", (set_by, now, user))
            empty = " AND ".join(f"{name} IS NULL" for name in LIMIT_FIELDS)
            db.execute(f"DELETE FROM quota_overrides WHERE owner = ? AND {empty}", (user,))
            return self.limits_for(user, db)

    def clear_override(self, user: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM quota_overrides WHERE owner = ?", (check_username(user),))
