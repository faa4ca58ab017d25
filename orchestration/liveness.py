"""Which worker processes are alive right now, read from the beat file each one keeps (not
Temporal's activity heartbeats: orchestration/heartbeat.py).

Every worker process writes `<home>/state/workers/<identity>.json` every BEAT_INTERVAL seconds
(workers/beat_file.py) and removes it when it stops cleanly. A worker counts as alive while its last beat
is younger than ALIVE_WINDOW and, when it runs on this host, while its process exists: a `kill -9` is
seen at the next read, a worker on another host (sharing the storage folder) within ALIVE_WINDOW.
Files of dead workers are deleted by the reader. Temporal's own poller list is not used for this: the
server remembers a dead poller for over a minute.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.storage import Storage

BEAT_INTERVAL = 2.0  # seconds between two writes of a worker's beat file
ALIVE_WINDOW = 8.0  # a beat older than this is a dead (or hung) worker: four beats missed


@dataclass(frozen=True)
class QueueLoad:
    """One task queue a worker serves: its activity slots and how many run an activity now."""

    queue: str
    slots: int
    busy: int

    @property
    def free(self) -> int:
        return max(0, self.slots - self.busy)


@dataclass(frozen=True)
class WorkerBeat:
    """What one worker process last wrote about itself."""

    identity: str  # pid@host, as Temporal knows the worker
    pid: int
    host: str
    pid_ns: str  # its pid namespace: two containers may share a host name but not their process ids
    started: datetime
    beat: datetime
    queues: tuple[QueueLoad, ...]

    def to_json(self) -> bytes:
        data = {**asdict(self), "started": self.started.isoformat(), "beat": self.beat.isoformat()}
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkerBeat:
        """Raises ValueError (or KeyError, TypeError) on a file that is not a beat file."""
        d = json.loads(text)
        return cls(
            identity=str(d["identity"]),
            pid=int(d["pid"]),
            host=str(d["host"]),
            pid_ns=str(d["pid_ns"]),
            started=_utc(d["started"]),
            beat=_utc(d["beat"]),
            queues=tuple(QueueLoad(str(q["queue"]), int(q["slots"]), int(q["busy"])) for q in d["queues"]),
        )

    def load(self, queue: str) -> QueueLoad | None:
        return next((q for q in self.queues if q.queue == queue), None)

    def age_s(self, now: datetime) -> float:
        return max(0.0, (now - self.beat).total_seconds())


def _utc(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("a beat time without a time zone")
    return when.astimezone(UTC)


def this_host() -> tuple[str, str]:
    """(host name, pid namespace) of this process: a pid is only checked where both are the same."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:  # no /proc (not Linux): the host name alone
        ns = ""
    return os.uname().nodename, ns


def default_identity() -> str:
    return f"{os.getpid()}@{os.uname().nodename}"


def beat_path(storage: Storage, identity: str) -> Path:
    """The beat file of `identity`; characters a file name should not hold become '_'."""
    return storage.workers_state / f"{re.sub(r'[^A-Za-z0-9._@-]', '_', identity)}.json"


def pid_exists(pid: int) -> bool:
    """The process runs (a zombie, killed but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another account
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:  # with /proc: it ended meanwhile; without (not Linux): os.kill's answer
        return not os.path.isdir("/proc")
    except (OSError, IndexError):
        return True


def is_alive(beat: WorkerBeat, now: datetime, here: tuple[str, str]) -> bool:
    """Beat within ALIVE_WINDOW, and on this host its process still exists."""
    if (now - beat.beat).total_seconds() > ALIVE_WINDOW:
        return False
    if (beat.host, beat.pid_ns) == here:
        return pid_exists(beat.pid)
    return True  # another host: only its beat tells


def live_workers(storage: Storage, now: datetime | None = None) -> list[WorkerBeat]:
    """The worker processes alive now, by identity; the files of dead ones (and half-written leftovers of
    a killed writer) are deleted on the way."""
    now = now or datetime.now(UTC)
    here = this_host()
    alive: list[WorkerBeat] = []
    try:
        paths = sorted(storage.workers_state.iterdir())
    except OSError:  # no worker has ever run here
        return []
    for path in paths:
        try:
            if path.suffix != ".json":  # a writer killed between writing and renaming its file
                _prune_if_old(path)
                continue
            beat = WorkerBeat.from_json(path.read_bytes())
        except FileNotFoundError:  # removed by its worker (or another reader) meanwhile
            continue
        except (ValueError, KeyError, TypeError, OSError):  # never counted alive; deleted once it is old
            _prune_if_old(path)
            continue
        if is_alive(beat, now, here):
            alive.append(beat)
        else:
            _prune(path)
    return alive


def _prune_if_old(path: Path) -> None:
    try:
        if time.time() - path.stat().st_mtime > ALIVE_WINDOW:
            _prune(path)
    except OSError:
        pass


def _prune(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # a read-only storage folder: leave it, it is not counted anyway
        pass


def serving(workers: list[WorkerBeat], queue: str) -> list[WorkerBeat]:
    """The workers that serve `queue`."""
    return [w for w in workers if w.load(queue) is not None]


def slots_on(workers: list[WorkerBeat], queue: str) -> int:
    """The activity slots of `queue` over these workers (one training slot per worker process)."""
    return sum(load.slots for w in workers if (load := w.load(queue)) is not None)
