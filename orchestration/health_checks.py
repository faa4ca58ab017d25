"""The health report's checks of what lives beside Temporal: the workers' beat files, the storage folder,
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
from pathlib import Path

from core.storage import Storage
from orchestration.liveness import WorkerBeat, pid_exists, serving

OK, DEGRADED, DOWN = "ok", "degraded", "down"
LOW_SPACE_BYTES = 1024**3  # 1 GiB: less free than this in the storage folder is degraded (uploads and models need room)
STATE_UNWRITABLE = "the state folder cannot be written; worker liveness is unknown"


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
    free: int  # slots not busy (QueueLoad.free)
    last_beat_s: float  # seconds since its last beat


@dataclass(frozen=True)
class ChildRow:
    """One child process of the launcher, as its state file says."""

    name: str
    state: str  # starting, running, restarting, given-up, stopped
    restarts: int
    since: str | None


def counted(n: int, one: str, many: str | None = None) -> str:
    """ "1 worker process", "2 worker processes": the one way the health texts count things."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def workers_text(n: int) -> str:
    return counted(n, "worker process", "worker processes")


def size_text(nbytes: int) -> str:
    """Binary units, labelled as such: 1 GiB is 1024**3 bytes."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def check_workers(
    workers: list[WorkerBeat],
    task_queue: str,
    io_queue: str,
    now: datetime,
    temporal_up: bool = True,
    state_writable: bool = True,
) -> tuple[Check, list[WorkerRow]]:
    """Live workers on this app's two queues; none at all is down, a queue nobody serves is degraded. Alive
    workers with Temporal down wait for it (degraded); with the state folder unwritable their beat files
    cannot be written, so "none alive" only means "unknown" (degraded)."""
    names = {task_queue: "training", io_queue: "data tasks"}
    rows = [
        WorkerRow(w.identity, names[q.queue], q.slots, q.busy, q.free, round(w.age_s(now), 1))
        for w in workers
        for q in w.queues
        if q.queue in names
    ]
    training, data = serving(workers, task_queue), serving(workers, io_queue)
    if not training and not data:
        if not state_writable:
            return Check("workers", DEGRADED, f"Not known: {STATE_UNWRITABLE} (see the storage check)."), rows
        return Check("workers", DOWN, "No worker process is running: nothing can be trained, uploaded or predicted."), rows
    count = len({w.identity for w in training} | {w.identity for w in data})
    if not temporal_up:
        alive = f"{workers_text(count)} alive"
        return Check("workers", DEGRADED, f"{alive} but waiting for Temporal: they take work once it answers."), rows
    if not training:
        return Check("workers", DEGRADED, "No worker process serves training: new runs wait for one."), rows
    if not data:
        return Check("workers", DEGRADED, "No worker process serves data tasks: uploads and predictions are refused."), rows
    slots = sum(r.slots for r in rows if r.queue == "training")
    free = sum(r.free for r in rows if r.queue == "training")
    return Check("workers", OK, f"{workers_text(count)} alive; {free} of {slots} training slots free."), rows


def unwritable(folder: Path) -> str | None:
    """Write and remove a probe file in `folder`: None if that works, else why not (without the path)."""
    probe = folder / f".health-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok")  # no fsync: the Home page runs this check on every visit
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as err:  # its text names the folder: only the reason is kept
        return (err.strerror or type(err).__name__).lower()
    return None


def check_storage(storage: Storage, low_space: int = LOW_SPACE_BYTES) -> tuple[Check, int | None, bool]:
    """A probe file in the storage folder and in the workers' state folder (where their beat files go), then
    the free space. Returns the check, the free bytes and whether the state folder can be written."""
    if reason := unwritable(storage.root):
        return Check("storage", DOWN, f"The data folder cannot be written ({reason}): uploads and model saves fail."), None, False
    state = storage.workers_state
    state_reason = unwritable(state) if state.is_dir() else None  # no folder yet: no worker ever ran here
    try:
        free = shutil.disk_usage(storage.root).free
    except OSError:
        free = None
    if state_reason:
        return Check("storage", DEGRADED, f"The data folder is writable, but {STATE_UNWRITABLE} ({state_reason})."), free, False
    if free is not None and free < low_space:
        text = f"Only {size_text(free)} free in the data folder (below {size_text(low_space)})."
        return Check("storage", DEGRADED, text), free, True
    return Check("storage", OK, f"The data folder is writable; {size_text(free or 0)} free."), free, True


def liveness_unknown(storage: Storage) -> bool:
    """The workers cannot write their beat files here: that no beat is fresh says nothing about them."""
    state = storage.workers_state
    return state.is_dir() and unwritable(state) is not None


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


def child_log(name: str) -> str:
    """A launcher child's log, relative to the data folder (the report names no server path)."""
    return f"logs/{name}.log"


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
        names = ", ".join(f"{name} (its log: {child_log(name)})" for name in given_up)
        return Check("supervisor", DEGRADED, f"Given up after failing again and again: {names}."), rows
    if restarting:
        return Check("supervisor", DEGRADED, f"Starting or restarting: {', '.join(restarting)}."), rows
    return Check("supervisor", OK, f"The launcher runs {counted(len(rows), 'process', 'processes')}; none is failing."), rows


def workers_restarting(storage: Storage) -> bool:
    """The launcher running here is starting or restarting a worker process now (its state file says so)."""
    _, rows = check_supervisor(storage)
    return any(r.name.startswith("worker") and r.state in ("restarting", "starting") for r in rows)
