"""Per-user quotas: the launch ledger in the app DB, checked against each user's limits on every launch.

The ledger is a table of the workflows the service started, one row per launch: run id, owner, kind,
the training slots it holds, the bytes it is about to store, when it started, and whether it has
closed. It is the one source of the numbers every quota is checked against, in every process that
shares the app database (the Streamlit app, later the REST API):

- runs in flight = the slots of the owner's open `train`/`batch` entries (a batch holds its
  `max_parallel`, since it never runs more children at once; a batch waiting for "retry failed" keeps
  them, as a retry runs that many again);
- launches per minute = the owner's `train`/`batch` entries started in the last 60 s (a sliding window);
- data tasks per minute = the same for `ingest`/`check`/`predict` (short workflows, a flood guard);
- stored bytes = the size of the owner's datasets, models, predictions and run folders (scratch files of
  runs, including those a cancel or a failure left behind) on disk, plus the bytes of uploads and
  predictions in progress (open data-task entries).

Every check-and-insert runs inside `write(db)` (BEGIN IMMEDIATE), so two processes can never both take
the last slot. The service refreshes open entries from Temporal (describe) before reserving, starts the
workflow after the commit, and deletes the reservation if the start fails. This module does no Temporal
calls and imports nothing from orchestration/, so it is testable on its own.

The limits (settings defaults, admin overrides in the app DB) are `QuotaOverrides` in
core/quota_overrides.py, which `Quotas` extends; the figures it returns and raises (`Limits`, `Refusal`,
`OverQuota`, `Usage`) are in core/quota_limits.py.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from core.config import Settings
from core.db import write
from core.names import check_username
from core.quota_limits import LedgerEntry, OverQuota, Refusal, Usage
from core.quota_overrides import QuotaOverrides
from core.storage import Storage

RUN_KINDS = ("train", "batch")  # hold training slots until the workflow closes
TASK_KINDS = ("ingest", "check", "predict")  # short data tasks: rate-limited, hold no slot
WINDOW_S = 60.0  # the sliding window of the per-minute limits
START_GRACE_S = 60.0  # a reservation whose workflow does not exist yet is not "closed" before this age
TASK_STALE_S = 15 * 60.0  # a data-task entry still open after this is a crashed caller (tasks time out at 10 min)
KEEP_CLOSED_S = 3600.0  # closed entries are pruned after this (only the last minute is ever counted)
STORED_FOLDERS = ("datasets", "models", "predictions", "runs")  # runs/: scratch of unfinished runs too

SCHEMA = """
CREATE TABLE IF NOT EXISTS launch_ledger (
    run_id      TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    slots       INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0,
    started_at  REAL NOT NULL,            -- Unix time of the reservation
    closed      INTEGER NOT NULL DEFAULT 0,
    closed_at   REAL
);
CREATE INDEX IF NOT EXISTS launch_ledger_owner ON launch_ledger (owner, closed, started_at);
"""


def _within_rate(limit: str, starts: list[float], allowed: int, now: float) -> None:
    """OverQuota when `starts` (the last minute's) already reach `allowed`, saying when the next is allowed."""
    if len(starts) >= allowed:
        raise OverQuota(Refusal(limit, len(starts), 1, allowed, _retry_after(starts, allowed, now)))


def _retry_after(starts: list[float], allowed: int, now: float) -> int:
    """Seconds until fewer than `allowed` of `starts` (ascending) lie in the window."""
    oldest_to_expire = starts[len(starts) - allowed]
    return max(1, math.ceil(oldest_to_expire + WINDOW_S - now))


def folder_size(path: Path) -> int:
    """Bytes of the regular files under `path` (symbolic links neither counted nor followed); 0 if it is missing.
    One scandir per folder, which has each entry's type at hand: three times faster than pathlib's rglob and a
    stat per path, and every launch weighs the user's folders (the stored-bytes quota)."""
    total, folders = 0, [path]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:  # deleted while we walked
                        pass
        except OSError:  # missing, or deleted while we walked
            pass
    return total


class Quotas(QuotaOverrides):
    def __init__(self, storage: Storage, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        super().__init__(storage, settings)  # the limits' table
        self.clock = clock  # wall clock: the ledger is shared by processes (tests may move it)
        with self._db() as db:
            db.executescript(SCHEMA)

    # --- stored bytes ---------------------------------------------------------------------------
    def stored_bytes(self, user: str) -> int:
        """Datasets + models + predictions + run folders of the user, on disk now."""
        home = self.storage.user_dir(user)
        return sum(folder_size(home / name) for name in STORED_FOLDERS)

    # --- the ledger -----------------------------------------------------------------------------
    def open_runs(self, user: str) -> list[LedgerEntry]:
        """The user's open run entries: what the service refreshes from Temporal before reserving."""
        with self._db() as db:
            rows = db.execute(
                f"SELECT * FROM launch_ledger WHERE owner = ? AND closed = 0 AND kind IN {_in(RUN_KINDS)} ORDER BY started_at",
                (check_username(user), *RUN_KINDS),
            ).fetchall()
        return [_entry(r) for r in rows]

    def room(self, user: str) -> int:
        """Training slots the user may still reserve, counting every open entry as running (the ledger alone)."""
        with self._db() as db:
            return self.limits_for(user, db).max_runs_in_flight - self._in_flight(db, check_username(user))

    def entry(self, run_id: str) -> LedgerEntry | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM launch_ledger WHERE run_id = ?", (run_id,)).fetchone()
        return _entry(row) if row else None

    def mark_closed(self, run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        if ids:
            with self._db() as db:
                db.executemany(
                    "UPDATE launch_ledger SET closed = 1, closed_at = ? WHERE run_id = ? AND closed = 0",
                    [(self.clock(), r) for r in ids],
                )

    def release(self, run_id: str) -> None:
        """Forget a reservation whose workflow did not start: it counts for nothing."""
        with self._db() as db:
            db.execute("DELETE FROM launch_ledger WHERE run_id = ?", (run_id,))

    def reserve_run(
        self, user: str, run_id: str, kind: str, slots: int, min_slots: int | None = None, stored_bytes: int | None = None
    ) -> int:
        """Reserve up to `slots` training slots for a launch (at least `min_slots`, default all of them);
        returns the slots granted. Raises OverQuota, reserving nothing, when the user is at a limit."""
        if kind not in RUN_KINDS or slots < 1:
            raise ValueError(f"a run launch is one of {RUN_KINDS} and holds at least one slot")
        low = slots if min_slots is None else max(1, min(min_slots, slots))
        with self._db() as db, write(db):
            now = self.clock()
            self._prune(db, now)
            limits = self.limits_for(user, db)
            in_flight = self._in_flight(db, user)
            free = limits.max_runs_in_flight - in_flight
            if free < low:
                raise OverQuota(Refusal("max_runs_in_flight", in_flight, low, limits.max_runs_in_flight))
            _within_rate("launches_per_minute", self._starts(db, user, RUN_KINDS, now), limits.launches_per_minute, now)
            if stored_bytes is not None and stored_bytes >= limits.max_stored_bytes:
                raise OverQuota(Refusal("max_stored_mb", stored_bytes, 0, limits.max_stored_bytes))
            granted = min(slots, free)
            db.execute(
                "INSERT INTO launch_ledger (run_id, owner, kind, slots, started_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, user, kind, granted, now),
            )
            return granted

    def reserve_task(self, user: str, run_id: str, kind: str, nbytes: int = 0, stored_bytes: int | None = None) -> None:
        """Reserve a data task (and the bytes it will store); OverQuota when at the rate or storage limit.
        `stored_bytes` is what the user stores on disk now; uploads in flight are added here."""
        if kind not in TASK_KINDS:
            raise ValueError(f"a data task is one of {TASK_KINDS}")
        with self._db() as db, write(db):
            now = self.clock()
            self._prune(db, now)
            limits = self.limits_for(user, db)
            _within_rate("tasks_per_minute", self._starts(db, user, TASK_KINDS, now), limits.tasks_per_minute, now)
            if nbytes and stored_bytes is not None:
                used = stored_bytes + self._pending_bytes(db, user, now)
                if used + nbytes > limits.max_stored_bytes:
                    raise OverQuota(Refusal("max_stored_mb", used, nbytes, limits.max_stored_bytes))
            db.execute(
                "INSERT INTO launch_ledger (run_id, owner, kind, bytes, started_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, user, kind, int(nbytes), now),
            )

    def check_cells(self, user: str, cells: int) -> None:
        limits = self.limits_for(user)
        if cells > limits.max_cells:
            raise OverQuota(Refusal("max_cells", 0, cells, limits.max_cells))

    def usage(self, user: str, stored_bytes: int | None = None) -> Usage:
        """The numbers as the ledger has them now (refresh open runs first for fresh figures)."""
        with self._db() as db:
            now = self.clock()
            limits = self.limits_for(user, db)
            starts = self._starts(db, user, RUN_KINDS, now)
            next_in = _retry_after(starts, limits.launches_per_minute, now) if len(starts) >= limits.launches_per_minute else None
            return Usage(
                user,
                limits,
                self._in_flight(db, user),
                len(starts),
                next_in,
                len(self._starts(db, user, TASK_KINDS, now)),
                self.stored_bytes(user) if stored_bytes is None else stored_bytes,
            )

    # --- inside a transaction -------------------------------------------------------------------
    @staticmethod
    def _in_flight(db: sqlite3.Connection, user: str) -> int:
        return db.execute(
            f"SELECT COALESCE(SUM(slots), 0) FROM launch_ledger WHERE owner = ? AND closed = 0 AND kind IN {_in(RUN_KINDS)}",
            (user, *RUN_KINDS),
        ).fetchone()[0]

    @staticmethod
    def _starts(db: sqlite3.Connection, user: str, kinds: tuple[str, ...], now: float) -> list[float]:
        rows = db.execute(
            f"SELECT started_at FROM launch_ledger WHERE owner = ? AND kind IN {_in(kinds)}"
            " AND started_at > ? ORDER BY started_at",
            (user, *kinds, now - WINDOW_S),
        ).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    def _pending_bytes(db: sqlite3.Connection, user: str, now: float) -> int:
        return db.execute(
            f"SELECT COALESCE(SUM(bytes), 0) FROM launch_ledger WHERE owner = ? AND closed = 0"
            f" AND kind IN {_in(TASK_KINDS)} AND started_at > ?",
            (user, *TASK_KINDS, now - TASK_STALE_S),
        ).fetchone()[0]

    @staticmethod
    def _prune(db: sqlite3.Connection, now: float) -> None:
        db.execute(
            "DELETE FROM launch_ledger WHERE started_at < ? AND (closed = 1 OR kind IN (?, ?, ?))",
            (now - KEEP_CLOSED_S, *TASK_KINDS),
        )


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("?" * len(values)) + ")"


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        row["run_id"], row["owner"], row["kind"], row["slots"], row["bytes"], row["started_at"], bool(row["closed"])
    )
