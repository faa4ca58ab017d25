"""The launcher's child processes: start them, wait until each is up, keep each one running on its own, stop them in order.

Each child runs in its own session so that Ctrl-C reaches the launcher only, which then stops the
children in reverse order (app, workers, Temporal). Logs go to <home>/logs/; a child that dies while
starting gets its log tail printed. After start-up every child is watched on its own (Stack.supervise):
one that exits is started again after a backoff, one that keeps failing is given up alone while the
others keep serving, and what the launcher knows of each is kept in <home>/state/supervisor.json.
The command lines come from launcher.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable

from child_process import FAILURE_WINDOW, GIVE_UP_FAILURES, Child, LaunchError, Restarts, clean_exit, describe_exit, utc_now
from core.config import Settings
from core.storage import Storage, write_atomic
from readiness import answers, done, http_ok, say, step, unless_stopped, wait_until, worker_polling

EXTERNAL_WAIT = 10.0  # seconds the launcher waits at start-up for the server at TEMPORAL_ADDRESS before going on
RETRY_EXTERNAL = 2.0  # then it asks again this often, to start the workers once it answers


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = Storage(settings.home)
        self.logs = settings.home / "logs"
        self.children: list[Child] = []
        self.temporal: Child | None = None  # None: TEMPORAL_ADDRESS names a server the launcher does not run
        self.env = {**os.environ, "TRAINEASY_HOME": str(settings.home), "PYTHONUNBUFFERED": "1"}

    def _child(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        serving: Callable[[Child], Awaitable[bool]] | None = None,
        serving_timeout: float = 90.0,
        needs_temporal: bool = False,
    ) -> Child:
        restart = Restarts(self.settings.restart_backoff)
        child = Child(name, argv, self.logs / f"{name}.log", env or self.env, restart, serving, serving_timeout, needs_temporal)
        self.children.append(child)
        return child

    async def start_temporal(self, argv: list[str]) -> bool:
        """Connect to TEMPORAL_ADDRESS if set, else start the dev server with `argv` (launcher.temporal_command).
        False if the server at TEMPORAL_ADDRESS does not answer within EXTERNAL_WAIT: the launcher goes on
        without it (the app shows the outage; the workers start once it answers, `start_workers_later`)."""
        s = self.settings
        if s.temporal_address:
            s_ = step(f"connecting to the Temporal server at {s.temporal_address} (TEMPORAL_ADDRESS)")
            try:
                await wait_until(self._temporal_ready, "Temporal", None, EXTERNAL_WAIT)
            except LaunchError:
                done(s_, "no answer")
                return False
            done(s_)
            await self.set_retention()
            return True
        s_ = step(f"starting Temporal dev server on 127.0.0.1:{s.temporal_port}")
        self.storage.temporal_db.parent.mkdir(parents=True, exist_ok=True)
        # a restart reuses the same --db-filename: workflows carry on where they were
        child = self.temporal = self._child("temporal", argv, serving=lambda _: self._temporal_ready())
        await child.start()
        self._write_state()
        await wait_until(self._temporal_ready, "Temporal", child, 90)
        done(s_)
        await self.set_retention()
        self._set(child, "running")
        return True

    async def set_retention(self) -> None:
        """Closed runs' histories are kept TRAINEASY_HISTORY_DAYS days (the dev server keeps 1). On an external
        server the namespace may be managed by someone else: if we may not change it, say so and go on."""
        from temporalio.service import RPCError

        from orchestration.client import ensure_history_retention

        days = self.settings.history_days
        try:
            if await ensure_history_retention(self.client, days):
                print(f"  … workflow history retention of namespace {self.settings.namespace!r} set to {days} days", flush=True)
        except RPCError as err:
            if not self.settings.temporal_address:
                raise LaunchError(f"Could not set the history retention to {days} days: {err.message}") from None
            print(
                f"  ! could not set the history retention of namespace {self.settings.namespace!r} to {days} "
                f"days ({err.message}); keeping the server's setting",
                flush=True,
            )

    async def _temporal_ready(self) -> bool:
        from orchestration.client import connect, ensure_search_attributes

        client = await asyncio.wait_for(connect(self.settings), 5)
        await ensure_search_attributes(client)  # no-op on the dev server; registers them on a cluster
        self.client = client
        return True

    async def start_workers(self, argv: list[str]) -> None:
        from orchestration.liveness import live_workers, serving

        n = self.settings.workers
        if n == 0:  # TRAINEASY_WORKERS=0: `python -m workers` runs in other containers or on other machines
            say("… no worker process here (TRAINEASY_WORKERS=0): runs wait for workers started elsewhere")
            return
        s_ = step(f"starting {n} worker process{'es' if n > 1 else ''}")
        workers = [
            self._child(f"worker-{i + 1}", list(argv), serving=worker_polling, serving_timeout=120, needs_temporal=True)
            for i in range(n)
        ]
        for w in workers:
            await w.start()
        self._write_state()

        async def polling() -> bool:
            if not all(w.alive for w in workers):
                dead = next(w for w in workers if not w.alive)
                raise LaunchError(f"{dead.name} exited while starting; last lines of {dead.log}:\n{dead.tail()}")
            return len(serving(live_workers(self.storage), self.settings.task_queue)) >= n  # their beat files

        await wait_until(polling, "the workers", None, 120)
        done(s_)
        for w in workers:
            self._set(w, "running")

    async def start_app(self, argv: list[str], env: dict[str, str]) -> None:
        port = self.settings.app_port
        await self._start_server("streamlit", f"the Streamlit app on port {port}", argv, env, port, "/_stcore/health")

    async def start_api(self, argv: list[str], env: dict[str, str]) -> None:
        port = self.settings.api_port
        await self._start_server("api", f"the REST API on port {port}", argv, env, port, "/openapi.json")

    async def _start_server(self, name: str, what: str, argv: list[str], env: dict[str, str], port: int, path: str) -> None:
        """Start an HTTP child and wait until `path` answers 200 on loopback (also its check after a restart)."""
        s_ = step(f"starting {what}")
        health = http_ok(f"{'https' if self.settings.tls else 'http'}://127.0.0.1:{port}{path}")
        child = self._child(name, argv, {**self.env, **env}, serving=lambda _: health())
        await child.start()
        self._write_state()
        await wait_until(health, name, child, 90)
        done(s_)
        self._set(child, "running")

    async def supervise(self, stop: asyncio.Event, workers_later: list[str] | None = None) -> int:
        """Until Ctrl-C (`stop`): every child is watched on its own; one exiting affects no other. With
        `workers_later` (their command line), the workers are started once Temporal answers, then watched too."""
        later = [self.start_workers_later(workers_later, stop)] if workers_later else []
        await asyncio.gather(*(self._watch(child, stop) for child in self.children), *later)
        return 0

    async def start_workers_later(self, argv: list[str], stop: asyncio.Event) -> None:
        """The server at TEMPORAL_ADDRESS did not answer at start-up: ask it every few seconds until Ctrl-C;
        once it answers, start the workers as at start-up (one exiting meanwhile is restarted by its watch)."""
        while not await answers(self._temporal_ready):
            if not await unless_stopped(stop, asyncio.sleep(RETRY_EXTERNAL)):
                return
        say(f"… Temporal at {self.settings.temporal_address} answers now: starting the workers")
        before = len(self.children)
        starting = asyncio.ensure_future(self._retention_then_workers(argv))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():  # Ctrl-C while they start: Stack.stop stops what was started
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return
        if (error := starting.exception()) is not None:
            say(f"! {error}")
        await asyncio.gather(*(self._watch(child, stop) for child in self.children[before:]))

    async def _retention_then_workers(self, argv: list[str]) -> None:
        await self.set_retention()
        await self.start_workers(argv)

    async def _watch(self, child: Child, stop: asyncio.Event) -> None:
        """Start `child` again whenever it exits, after its backoff; give it up when it keeps failing."""
        never_served = False  # its last restart did not come up in time: a failure whatever its exit code
        while True:
            assert child.proc is not None
            if not await unless_stopped(stop, child.proc.wait()):
                return
            code = child.proc.returncode
            failed = never_served or code is None or not clean_exit(code)
            now = time.monotonic()
            delay = child.restart.exited(now, now - child.started, failed)
            child.last_exit = code
            # after a restart that never came up, its exit code is the launcher's own SIGTERM: say why instead
            how = f"not serving {child.serving_timeout:g}s after its restart" if never_served else describe_exit(code)
            window = f"{FAILURE_WINDOW / 60:.0f} minutes"
            if delay is None:
                self._set(child, "given-up")
                say(
                    f"! {child.name} given up: it failed {GIVE_UP_FAILURES} times within {window} (last: {how}); "
                    f"everything else keeps running. Log: {child.log}"
                )
                return
            self._set(child, "restarting")
            if failed:
                say(
                    f"! {child.name} failed ({how}); restarting in {delay:g}s (failure {len(child.restart.recent(now))}; "
                    f"given up at {GIVE_UP_FAILURES} within {window}). Log: {child.log}"
                )
            else:
                say(
                    f"! {child.name} stopped cleanly ({describe_exit(code)}) without the launcher asking; "
                    f"starting it again in {delay:g}s (not counted as a failure). Log: {child.log}"
                )
            if not await unless_stopped(stop, asyncio.sleep(delay)):
                return
            if not await self._temporal_up(child, stop):
                return
            await child.start()
            child.restarts += 1
            self._write_state()
            outcome = await self._serving(child, stop)
            if outcome == "stopped":
                return
            never_served = outcome == "timeout"
            if never_served:
                await child.stop()
            elif outcome == "serving":
                self._set(child, "running")
                say(f"… {child.name} is running again (pid {child.pid}, restart {child.restarts})")

    async def _temporal_up(self, child: Child, stop: asyncio.Event) -> bool:
        """A worker started while the launcher's Temporal server is down would only fail: wait for it."""
        temporal = self.temporal
        if not child.needs_temporal or temporal is None or temporal is child:
            return True
        if temporal.state != "running":
            say(f"… {child.name} waits for the Temporal server to be running again before it starts")
        while temporal.state != "running":
            if not await unless_stopped(stop, asyncio.sleep(0.5)):
                return False
        return True

    async def _serving(self, child: Child, stop: asyncio.Event) -> str:
        """After a restart: "serving", "exited" (again), "timeout" or "stopped" (Ctrl-C)."""
        deadline = time.monotonic() + child.serving_timeout
        while time.monotonic() < deadline:
            if stop.is_set():
                return "stopped"
            if not child.alive:
                return "exited"
            try:
                if child.serving is None or await child.serving(child):
                    return "serving" if child.alive else "exited"
            except Exception:  # not up yet
                pass
            if not await unless_stopped(stop, asyncio.sleep(0.5)):
                return "stopped"
        return "timeout"

    def _set(self, child: Child, state: str) -> None:
        child.state, child.since = state, utc_now()
        self._write_state()

    def _write_state(self) -> None:
        """<home>/state/supervisor.json, for a health view; replaced atomically, so a reader never sees half of it."""
        now = time.monotonic()
        children = {
            c.name: {
                "state": c.state,
                "pid": c.pid,
                "since": c.since,
                "restarts": c.restarts,
                "failures": len(c.restart.recent(now)),
                "last_exit": c.last_exit,
                "log": str(c.log),
            }
            for c in self.children
        }
        state = {"launcher_pid": os.getpid(), "updated": utc_now(), "children": children}
        try:
            write_atomic(self.storage.supervisor_state, json.dumps(state, indent=2).encode())
        except OSError as err:  # a full or read-only disk must not take the launcher down
            say(f"! could not write {self.storage.supervisor_state}: {err.strerror}")

    async def stop(self) -> None:
        for child in reversed(self.children):
            await child.stop()
            if child.state != "given-up":
                child.state, child.since = "stopped", utc_now()
        self._write_state()
