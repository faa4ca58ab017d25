"""A worker process's beat file (its liveness; not Temporal's activity heartbeats): who it is, which task
queues it serves and how many of their activity slots are busy (the training slot once, under the shared
training queue, though it also serves the process's own queue), rewritten every BEAT_INTERVAL and removed
on a clean stop. The reader and the file's format are orchestration/liveness.py."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor, Worker

from core.storage import Storage, write_atomic
from orchestration.liveness import BEAT_INTERVAL, QueueLoad, WorkerBeat, beat_path, this_host


class SlotUse(Interceptor):
    """Counts the activities in flight on one worker (one task queue). Activity interceptors run on the
    worker's event loop, also for activities that run in a thread: no lock needed."""

    def __init__(self, queue: str, slots: int) -> None:
        self.queue, self.slots, self.busy = queue, slots, 0

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Counting(next, self)

    def load(self) -> QueueLoad:
        return QueueLoad(self.queue, self.slots, self.busy)


class _Counting(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, use: SlotUse) -> None:
        super().__init__(next)
        self._use = use

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        self._use.busy += 1
        try:
            return await super().execute_activity(input)
        finally:
            self._use.busy -= 1


def slot_uses(workers: Sequence[Worker]) -> list[SlotUse]:
    """The SlotUse interceptors of these workers, each once: workers.worker.build_workers gives each worker one,
    and the same one to the two training workers (the shared queue's and the process's own) that share a slot."""
    found: list[SlotUse] = []
    for use in (i for w in workers for i in w.config().get("interceptors", []) if isinstance(i, SlotUse)):
        if not any(use is seen for seen in found):
            found.append(use)
    return found


@asynccontextmanager
async def beat_file(storage: Storage, workers: Sequence[Worker], identity: str) -> AsyncIterator[None]:
    """Write this process's beat file now and every BEAT_INTERVAL until the block ends, then remove it."""
    uses = slot_uses(workers)
    host, pid_ns = this_host()
    started = datetime.now(UTC)
    path = beat_path(storage, identity)
    warned = False

    def beat() -> None:
        nonlocal warned
        data = WorkerBeat(identity, os.getpid(), host, pid_ns, started, datetime.now(UTC), tuple(u.load() for u in uses))
        try:
            write_atomic(path, data.to_json())
            warned = False
        except OSError as err:  # a full or read-only disk must not stop the worker; it just looks dead
            if not warned:
                print(f"worker {os.getpid()}: cannot write its beat file ({err.strerror})", flush=True)
            warned = True

    async def beating() -> None:
        while not stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), BEAT_INTERVAL)
                return
            await asyncio.to_thread(beat)  # a slow disk must not stall the worker's event loop

    stop = asyncio.Event()
    await asyncio.to_thread(beat)
    task = asyncio.create_task(beating())
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.shield(task)  # a write under way finishes first: the file must not come back
        finally:
            with suppress(OSError):
                path.unlink(missing_ok=True)
