"""The API process's one Temporal client, service and engine watch, on uvicorn's event loop, and the two ways
a route calls the service: `call` for what needs Temporal (fails at once with Unavailable while the engine
watch says it is down), `sync` for files and the app database (in a worker thread, off the event loop)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from core.api_tokens import ApiTokens
from core.audit import AuditLog
from core.config import Settings
from core.storage import Storage
from orchestration.client import APP_RETRIES, connect
from orchestration.engine_watch import EngineWatch, temporal_given_up
from orchestration.health import UNREACHABLE, HealthReport, probe_temporal, unreachable
from orchestration.service import TrainEasyService

log = logging.getLogger("traineasy.api")
T = TypeVar("T")
DEFAULT_TIMEOUT = 20.0  # seconds, as the pages' facade (ui/sync_service.py)
DATA_TASK_TIMEOUT = 660.0  # uploads and predictions run in a worker (the service allows them 10 minutes)
STREAMS_PER_USER = 8  # progress streams open at once per user (each reads its run every few seconds); one more is 429


class StreamSlots:
    """The streams each user has open in this API process, so that one user's scripts cannot have it read runs
    from Temporal without end (each stream queries its run every `interval` seconds for up to an hour)."""

    def __init__(self, limit: int = STREAMS_PER_USER) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def take(self, user: str) -> bool:
        if self.open[user] >= self.limit:
            return False
        self.open[user] += 1
        return True

    def give_back(self, user: str) -> None:
        self.open[user] -= 1
        if self.open[user] <= 0:
            del self.open[user]


class Unavailable(Exception):
    """Temporal cannot be reached: the call was not made, or it failed to reach the server (plain words)."""


class Backend:
    """Built in the app's lifespan (`start`), on the loop that serves requests; the client connects lazily,
    so the API starts and answers (503, health) while Temporal is down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        storage = Storage(settings.home)
        self.tokens = ApiTokens(storage)
        self.audit = AuditLog(storage)
        self._storage = storage
        self.service: TrainEasyService | None = None
        self.watch: EngineWatch | None = None
        self._health: tuple[float, HealthReport] | None = None  # the last report and when it was made
        self.streams = StreamSlots()  # api/routes_stream.py

    async def start(self) -> None:
        client = await connect(self.settings, lazy=True, retries=APP_RETRIES)
        self.service = TrainEasyService(client, self.settings)
        self.watch = EngineWatch(lambda: probe_temporal(client), given_up=lambda: temporal_given_up(self._storage))
        self.watch.start(asyncio.get_running_loop())

    async def stop(self) -> None:
        if self.watch is not None:
            await asyncio.to_thread(self.watch.stop)  # stop() waits on the loop: from another thread

    async def health(self, reuse_for: float) -> HealthReport:
        """The engine's health, made again only when the last report is older than `reuse_for` seconds."""
        now = time.monotonic()
        if self._health is None or now - self._health[0] > reuse_for:
            self._health = (now, await self.svc.health())
        return self._health[1]

    @property
    def svc(self) -> TrainEasyService:
        if self.service is None:
            raise RuntimeError("the API backend was not started")
        return self.service

    async def call(self, coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        """Await a service coroutine that needs Temporal: Unavailable at once while the watch says it is down,
        or when the call fails to reach the server (the watch then probes at once)."""
        state = self.watch.snapshot() if self.watch is not None else None
        if state is not None and state.down:
            coro.close()  # never started: no RPC, and no "never awaited" warning
            raise Unavailable(state.reason())
        try:
            return await asyncio.wait_for(coro, timeout)
        except Exception as exc:
            if unreachable(exc):
                log.warning("a call could not reach Temporal: %s", type(exc).__name__)
                if self.watch is not None:
                    self.watch.poke()
                raise Unavailable(UNREACHABLE) from None
            raise

    async def sync(self, fn: Callable[..., T], *args: Any) -> T:
        """A service call that reads files or the app database: in a thread, so the loop keeps serving."""
        return await run_in_threadpool(fn, *args)
