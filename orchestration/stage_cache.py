"""What a run's stages would read again, kept in the worker process between them: the prepared data, the split
and the fitted model.

A run's stages stay on the worker that ran its first one (workers/training_slot.py), so the next stage finds
here what the last one had in memory instead of reading the Parquet, split.npz or model.skops again. The files
stay the truth: every entry is keyed by the run and by the identity of the file it stands for (device, inode,
size, modification time; for the prepared data also the request), and is used only while that file is the same,
so a stage on another worker that rewrote it, or a dataset replaced meanwhile, makes a miss, never a stale hit.

Bounded: at most MAX_RUNS runs (the one this worker serves and one it may still hear from), dropped when the
run's model is registered or a stage fails with no retry to come or is cancelled (`release`), and once unused for
IDLE_SECONDS (a run that moved to another worker); a run with a stage in flight here (`serving`) is never dropped
for age or count.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MAX_RUNS = 2
IDLE_SECONDS = 120.0  # a run's next stage comes in milliseconds, its retry within RETRY's 30 s at most


def file_id(path: Path) -> tuple[int, int, int, int] | None:
    """Who the file is now: a rewrite (atomic rename: a new inode) or any change gives another value; None if
    it is not there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class _Run:
    items: dict[str, tuple[Hashable, Any]] = field(default_factory=dict)  # kind -> (key, value)
    serving: int = 0  # stages of this run running in this process now
    last_used: float = 0.0


class RunCache:
    """Per-run values of one worker process, safe to use from several activity threads."""

    def __init__(self, max_runs: int = MAX_RUNS, idle_seconds: float = IDLE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.max_runs, self.idle_seconds, self._clock = max_runs, idle_seconds, clock
        self._runs: OrderedDict[str, _Run] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, run_id: str, kind: str, key: Callable[[], Hashable | None], make: Callable[[], T]) -> T:
        """The value kept for (run, kind) if its key is still `key()`; else `make()`, kept when the key did not
        change while it was made (a file replaced during the read is not kept). A None key is never kept."""
        before = key()
        if before is not None:
            with self._lock:
                run = self._touch(run_id)
                item = run.items.get(kind) if run is not None else None
                if item is not None and item[0] == before:
                    return item[1]
        value = make()
        if before is not None and key() == before:
            self.keep(run_id, kind, before, value)
        return value

    def keep(self, run_id: str, kind: str, key: Hashable | None, value: object) -> None:
        """Keep `value` for (run, kind) under `key` (nothing with a None key)."""
        if key is None:
            return
        with self._lock:
            kept = self._touch(run_id) or self._runs.setdefault(run_id, _Run(last_used=self._clock()))
            kept.items[kind] = (key, value)
            self._bound()

    def release(self, run_id: str) -> None:
        """The run is over here (registered, failed for good or cancelled): drop what it kept."""
        with self._lock:
            self._runs.pop(run_id, None)

    @contextmanager
    def serving(self, run_id: str) -> Iterator[None]:
        """A stage of the run runs in this process: its values stay however long the stage takes."""
        with self._lock:
            run = self._touch(run_id) or self._runs.setdefault(run_id, _Run(last_used=self._clock()))
            run.serving += 1
        try:
            yield
        finally:
            with self._lock:
                if (left := self._runs.get(run_id)) is not None:  # not released meanwhile
                    left.serving -= 1
                    left.last_used = self._clock()
                    if not left.items and not left.serving:
                        del self._runs[run_id]
                self._bound()

    def sweep(self) -> None:
        """Drop runs unused for IDLE_SECONDS (a run that moved to another worker, or stopped)."""
        with self._lock:
            self._bound()

    def runs(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def _touch(self, run_id: str) -> _Run | None:
        run = self._runs.get(run_id)
        if run is not None:
            run.last_used = self._clock()
            self._runs.move_to_end(run_id)
        return run

    def _bound(self) -> None:
        now = self._clock()
        idle = [r for r, run in self._runs.items() if not run.serving and now - run.last_used > self.idle_seconds]
        for run_id in idle:
            del self._runs[run_id]
        for run_id in [r for r, run in self._runs.items() if not run.serving]:  # least recently used first
            if len(self._runs) <= self.max_runs:
                break
            del self._runs[run_id]


RUNS = RunCache()  # this process's
