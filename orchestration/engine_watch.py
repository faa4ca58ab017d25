"""Whether Temporal answers, as one app process sees it: a probe every few seconds on the client's event loop
and a thread-safe snapshot (up or down, down since when, the last error, whether the launcher gave the server
up) that the outage banner and the fast failure of calls read. No Streamlit here: the app's runtime starts
it, tests drive it directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from core.storage import Storage
from orchestration.health import UNREACHABLE, TemporalCheck, error_line
from orchestration.liveness import pid_exists

log = logging.getLogger("traineasy.engine")
PROBE_EVERY = 2.0  # seconds between probes


def utc_now() -> datetime:
    return datetime.now(UTC)


def temporal_given_up(storage: Storage) -> bool:
    """True if the launcher running here gave the Temporal server up (it failed again and again): it will
    not come back by itself. Read from the launcher's state file (<home>/state/supervisor.json)."""
    try:
        state = json.loads(storage.supervisor_state.read_text())
        launcher, temporal = int(state["launcher_pid"]), state["children"]["temporal"]
        return bool(temporal.get("state") == "given-up" and pid_exists(launcher))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False  # no launcher here, or a state file it is still writing: assume it restarts


@dataclass(frozen=True)
class EngineState:
    """One snapshot. `down_since` is the first failed probe of the current outage (None while up);
    `outages` counts the up -> down flips this process has seen."""

    up: bool = True
    down_since: datetime | None = None
    last_error: str | None = None
    checked_at: datetime | None = None  # the last probe's time (None: not probed yet)
    outages: int = 0
    given_up: bool = False  # down, and the launcher stopped restarting it: an admin must restart the stack
    what: str = UNREACHABLE  # the headline of the outage: not reachable, or answering but refusing the app

    @property
    def down(self) -> bool:
        return not self.up

    @property
    def refused(self) -> bool:
        """Down because the server answers but refuses the app (a setting to fix), not because it is away."""
        return self.down and self.what != UNREACHABLE

    def reason(self) -> str:
        """The sentence a refused call carries: "Temporal is not reachable (since 12:03:04 UTC)"."""
        since = f" (since {self.down_since:%H:%M:%S} UTC)" if self.down_since else ""
        return f"{self.what}{since}"

    def recovery(self) -> str:
        """What brings it back: by itself, unless the launcher gave it up."""
        if self.given_up:
            return "The launcher gave Temporal up after repeated failures: an admin must restart the stack (`make run`)."
        if self.refused:
            return "An admin must fix the app's Temporal settings (namespace, TLS, API key); then it recovers by itself."
        return "This recovers by itself when Temporal is back: no reload needed."


class EngineWatch:
    """Probes with `probe()` every `every` seconds once started on a loop; `snapshot()` from any thread.
    While down, `given_up()` says whether the launcher stopped restarting the server."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[TemporalCheck]],
        every: float = PROBE_EVERY,
        clock: Callable[[], datetime] = utc_now,
        given_up: Callable[[], bool] = lambda: False,
    ) -> None:
        self._probe, self._every, self._clock, self._given_up = probe, every, clock, given_up
        self._lock = threading.Lock()
        self._state = EngineState()
        self._probed = threading.Event()  # set once the first probe has answered
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: concurrent.futures.Future[None] | None = None
        self._task: asyncio.Task[object] | None = None

    def snapshot(self) -> EngineState:
        with self._lock:
            return self._state

    def record(self, check: TemporalCheck) -> EngineState:
        """Fold one probe's answer into the state: the first failure of an outage sets since-when, later
        failures keep it (only the error and the probe time move), the first success clears it. Any check
        that is not `usable` (no answer, or an answer that refuses the app) is down; any other is up."""
        now = self._clock()
        given_up = not check.reachable and self._given_up()
        with self._lock:
            old = self._state
            if check.usable:
                new = EngineState(True, None, check.error, now, old.outages)
            elif old.up:
                new = EngineState(False, now, check.error, now, old.outages + 1, given_up, check.reason())
            else:
                new = replace(old, last_error=check.error, checked_at=now, given_up=given_up, what=check.reason())
            self._state = new
        if old.up != new.up:
            if new.up:
                log.warning("Temporal is reachable again (down since %s)", old.down_since)
            else:
                log.warning("%s: %s", check.reason(), check.error)
        self._probed.set()
        return new

    async def probe_once(self) -> EngineState:
        try:
            check = await self._probe()
        except Exception as exc:  # probe_temporal sorts every answer itself: this is a probe that broke
            log.exception("the Temporal probe failed")
            check = TemporalCheck(False, None, error_line(exc))
        return self.record(check)

    async def run(self) -> None:
        """Probe for ever (until cancelled); `poke()` asks for the next probe at once."""
        self._wake = asyncio.Event()
        self._task = asyncio.current_task()
        while True:
            await self.probe_once()
            try:
                await asyncio.wait_for(self._wake.wait(), self._every)
            except TimeoutError:
                pass
            self._wake.clear()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the probes on `loop` (already running in another thread)."""
        self._loop = loop
        self._running = asyncio.run_coroutine_threadsafe(self.run(), loop)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop probing, from another thread than the loop's; returns once the probing task has ended."""
        loop, running = self._loop, self._running
        if loop is None or running is None or loop.is_closed() or running.done():
            return

        async def halt() -> None:
            running.cancel()  # cancels the task on the loop; wait for it to unwind there
            while self._task is not None and not self._task.done():
                await asyncio.sleep(0)

        try:
            asyncio.run_coroutine_threadsafe(halt(), loop).result(timeout)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass  # the loop stopped meanwhile

    def wait_first(self, timeout: float) -> EngineState:
        """The state once the first probe has answered (or as it is after `timeout` seconds)."""
        self._probed.wait(timeout)
        return self.snapshot()

    def poke(self) -> None:
        """From any thread: a call just failed to reach the server, probe now rather than in a few seconds."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)
