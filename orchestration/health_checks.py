"""The health report's checks of what lives beside Temporal: the workers' heartbeats, the storage folder,
the app database and the launcher's state file. Each returns a `Check` (ok / degraded / down and why, in
plain words) and what the health view shows with it; orchestration/health.py assembles them."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime

from core.storage import Storage
from orchestration.liveness import WorkerBeat, pid_exists, serving

OK, DEGRADED, DOWN = "ok", "degraded", "down"
LOW_SPACE_BYTES = 1024**3  # less free than this in the storage folder: degraded (uploads and models need room)


@dataclass(frozen=True)
class Check:
    """One part of the stack: its state (ok, degraded, down) and the reason, for a reader who is not a developer."""

    name: str
    state: str
    reason: str


@dataclass(frozen=True)
class WorkerRow:
    """One task queue of one live worker process."""

    worker: str  # pid@host
    queue: str  # "training" or "data tasks"
    slots: int
    busy: int
    last_beat_s: float  # seconds since its last heartbeat


@dataclass(frozen=True)
class ChildRow:
    """One child process of the launcher, as its state file says."""

    name: str
    state: str  # starting, running, restarting, given-up, stopped
    restarts: int
    since: str | None


def size_text(nbytes: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def check_workers(workers: list[WorkerBeat], task_queue: str, io_queue: str, now: datetime) -> tuple[Check, list[WorkerRow]]:
    """Live workers on this app's two queues; none at all is down, a queue nobody serves is degraded."""
    names = {task_queue: "training", io_queue: "data tasks"}
    rows = [
        WorkerRow(w.identity, names[q.queue], q.slots, q.busy, round(w.age_s(now), 1))
        for w in workers
        for q in w.queues
        if q.queue in names
    ]
    training, data = serving(workers, task_queue), serving(workers, io_queue)
    if not training and not data:
        return Check("workers", DOWN, "No worker process is running: nothing can be trained, uploaded or predicted."), rows
    if not training:
        return Check("workers", DEGRADED, "No worker process serves training: new runs wait for one."), rows
    if not data:
        return Check("workers", DEGRADED, "No worker process serves data tasks: uploads and predictions are refused."), rows
    slots = sum(r.slots for r in rows if r.queue == "training")
    free = sum(max(0, r.slots - r.busy) for r in rows if r.queue == "training")
    count = len({w.identity for w in training} | {w.identity for w in data})
    plural = "es" if count != 1 else ""
    return Check("workers", OK, f"{count} worker process{plural} alive; {free} of {slots} training slots free."), rows


def check_storage(storage: Storage, low_space: int = LOW_SPACE_BYTES) -> tuple[Check, int | None]:
    """Write and remove a probe file in the storage folder, then look at the free space."""
    probe = storage.root / f".health-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok")  # no fsync: the Home page runs this check on every visit
        finally:
            os.close(fd)
        probe.unlink()
        free = shutil.disk_usage(storage.root).free
    except OSError as err:  # its text names the folder: only the reason is kept
        reason = (err.strerror or type(err).__name__).lower()
        return Check("storage", DOWN, f"The data folder cannot be written ({reason}): uploads and model saves fail."), None
    if free < low_space:
        return Check("storage", DEGRADED, f"Only {size_text(free)} free in the data folder (below {size_text(low_space)})."), free
    return Check("storage", OK, f"The data folder is writable; {size_text(free)} free."), free


def check_database(storage: Storage) -> Check:
    """SQLite's quick check of the app database, opened read-only (a check must not create it)."""
    path = storage.app_db
    if not path.exists():
        return Check("database", DEGRADED, "The app database does not exist yet; the app creates it when it starts.")
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=2)) as db:
            result = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.OperationalError as err:
        if "locked" in str(err) or "busy" in str(err):
            return Check("database", DEGRADED, "The app database is busy; the check could not finish in time.")
        return Check("database", DOWN, f"The app database cannot be read ({err}).")
    except sqlite3.DatabaseError as err:
        return Check("database", DOWN, f"The app database is damaged ({err}).")
    if result != ["ok"]:
        return Check("database", DOWN, f"The app database is damaged ({'; '.join(map(str, result[:3]))}).")
    return Check("database", OK, "The app database passed its quick check.")


def check_supervisor(storage: Storage) -> tuple[Check, list[ChildRow]]:
    """The launcher's view of its children (<home>/state/supervisor.json), if a launcher runs here."""
    try:
        state = json.loads(storage.supervisor_state.read_text())
        launcher, children = int(state["launcher_pid"]), dict(state["children"])
    except FileNotFoundError:
        return Check("supervisor", OK, "Not started by the launcher: no process is supervised here."), []
    except (OSError, ValueError, KeyError, TypeError):
        return Check("supervisor", DEGRADED, "The launcher's state file cannot be read."), []
    if not pid_exists(launcher):
        return Check("supervisor", OK, "The launcher is not running here: no process is supervised."), []
    rows = [ChildRow(name, str(c.get("state")), int(c.get("restarts") or 0), c.get("since")) for name, c in children.items()]
    given_up = [r.name for r in rows if r.state == "given-up"]
    restarting = [r.name for r in rows if r.state in ("restarting", "starting")]
    if given_up:
        names = ", ".join(given_up)
        return Check("supervisor", DEGRADED, f"Given up after failing again and again: {names} (see logs/<name>.log)."), rows
    if restarting:
        return Check("supervisor", DEGRADED, f"Starting or restarting: {', '.join(restarting)}."), rows
    return Check("supervisor", OK, f"The launcher runs {len(rows)} processes; none is failing."), rows
