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
import signal
import socket
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.config import PROJECT_ROOT, Settings
from core.storage import Storage, write_atomic

BACKOFF_MAX = 60.0  # seconds: the longest wait before starting an exited child again
STABLE_AFTER = 60.0  # a child that ran this long before exiting is restarted after the base wait again
GIVE_UP_FAILURES = 5  # this many failures of one child ...
FAILURE_WINDOW = 600.0  # ... within this many seconds, and the launcher stops restarting it


def clean_exit(code: int) -> bool:
    """Exit code 0, or ended by SIGTERM/SIGINT: someone stopped the child on purpose; it did not crash."""
    return code == 0 or code in (-signal.SIGTERM, -signal.SIGINT)


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Restarts:
    """One child's restart bookkeeping: how long to wait before starting it again, and when to stop trying.

    A failure (a crash, or a restart that never came up) counts towards giving up: GIVE_UP_FAILURES within
    FAILURE_WINDOW. A clean stop does not count, but it does lengthen the wait like a failure does, so that
    a child that keeps stopping itself at once cannot spin. The wait doubles from `base` up to BACKOFF_MAX
    with every exit and starts from `base` again after a run of STABLE_AFTER seconds.
    """

    base: float
    failures: list[float] = field(default_factory=list)  # when it failed (monotonic), within the window
    streak: int = 0  # exits since its last stable run: the backoff's exponent

    def exited(self, now: float, ran: float, failed: bool) -> float | None:
        """Record an exit after a run of `ran` seconds: the wait before the restart, or None to give it up."""
        if ran >= STABLE_AFTER:
            self.streak = 0
        if failed:
            self.failures = [*self.recent(now), now]
            if len(self.failures) >= GIVE_UP_FAILURES:
                return None
        delay = min(self.base * 2**self.streak, BACKOFF_MAX)
        self.streak += 1
        return delay

    def recent(self, now: float) -> list[float]:
        return [t for t in self.failures if now - t < FAILURE_WINDOW]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class LaunchError(Exception):
    """A start-up problem with one line telling the user what to do."""


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    env: dict[str, str]
    restart: Restarts
    # after a restart: is it serving yet? (at start-up the launcher checks each kind of child itself)
    serving: Callable[[Child], Awaitable[bool]] | None = None
    serving_timeout: float = 90.0
    needs_temporal: bool = False  # restarted only once the launcher's Temporal server is up
    proc: asyncio.subprocess.Process | None = None
    started: float = field(default_factory=time.monotonic)
    log_offset: int = 0  # where this start's output begins in the log
    state: str = "starting"  # starting, running, restarting, given-up, stopped
    since: str = field(default_factory=_now)
    restarts: int = 0
    last_exit: int | None = None

    async def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.log_offset = out.tell()
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.alive and self.proc is not None else None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def output(self) -> str:
        """What this start of the child has logged so far."""
        try:
            with open(self.log, "rb") as fh:
                fh.seek(self.log_offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    async def stop(self, grace: float = 10.0) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def step(message: str) -> float:
    print(f"  … {message}", end="", flush=True)
    return time.monotonic()


def done(started: float, note: str = "ready") -> None:
    print(f" {note} ({time.monotonic() - started:.1f}s)", flush=True)


def say(message: str) -> None:
    print(f"  {message}", flush=True)


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, child: Child | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive:
            raise LaunchError(f"{child.name} exited while starting; last lines of {child.log}:\n{child.tail()}")
        try:
            if await check():
                return
        except Exception:  # not up yet
            pass
        await asyncio.sleep(0.5)
    raise LaunchError(f"{what} did not become ready within {timeout:.0f}s; see {child.log if child else 'the logs'}")


def http_ok(url: str) -> Callable[[], Awaitable[bool]]:
    # the health check only asks our own child on loopback whether it is up: no certificate check
    insecure = ssl._create_unverified_context() if url.startswith("https") else None

    async def check() -> bool:
        def get() -> bool:
            with urllib.request.urlopen(url, timeout=2, context=insecure) as resp:
                return resp.status == 200

        return await asyncio.to_thread(get)

    return check


async def worker_polling(child: Child) -> bool:
    """workers/worker.py says so once it has connected and its pollers run."""
    return f"worker {child.pid} polling" in child.output()


async def _unless_stopped(stop: asyncio.Event, awaitable: Awaitable) -> bool:
    """Await `awaitable` unless Ctrl-C comes first: False if it did."""
    task = asyncio.ensure_future(awaitable)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    for t in (task, stopping):
        t.cancel()
    return not stop.is_set()


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

    async def start_temporal(self, argv: list[str]) -> None:
        """Connect to TEMPORAL_ADDRESS if set, else start the dev server with `argv` (launcher.temporal_command)."""
        s = self.settings
        if s.temporal_address:
            s_ = step(f"connecting to the Temporal server at {s.temporal_address} (TEMPORAL_ADDRESS)")
            await wait_until(self._temporal_ready, "Temporal", None, 60)
            done(s_)
            await self.set_retention()
            return
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
        from orchestration.client import count_pollers

        n = self.settings.workers
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
            return await count_pollers(self.client, self.settings.task_queue) >= n

        await wait_until(polling, "the workers", None, 120)
        done(s_)
        for w in workers:
            self._set(w, "running")

    async def start_app(self, argv: list[str], env: dict[str, str]) -> None:
        s = self.settings
        s_ = step(f"starting the Streamlit app on port {s.app_port}")
        health = http_ok(f"{'https' if s.tls else 'http'}://127.0.0.1:{s.app_port}/_stcore/health")
        child = self._child("streamlit", argv, {**self.env, **env}, serving=lambda _: health())
        await child.start()
        self._write_state()
        await wait_until(health, "Streamlit", child, 90)
        done(s_)
        self._set(child, "running")

    async def supervise(self, stop: asyncio.Event) -> int:
        """Until Ctrl-C (`stop`): every child is watched on its own; one exiting affects no other."""
        await asyncio.gather(*(self._watch(child, stop) for child in self.children))
        return 0

    async def _watch(self, child: Child, stop: asyncio.Event) -> None:
        """Start `child` again whenever it exits, after its backoff; give it up when it keeps failing."""
        never_served = False  # its last restart did not come up in time: a failure whatever its exit code
        while True:
            assert child.proc is not None
            if not await _unless_stopped(stop, child.proc.wait()):
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
            if not await _unless_stopped(stop, asyncio.sleep(delay)):
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
            if not await _unless_stopped(stop, asyncio.sleep(0.5)):
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
            if not await _unless_stopped(stop, asyncio.sleep(0.5)):
                return "stopped"
        return "timeout"

    def _set(self, child: Child, state: str) -> None:
        child.state, child.since = state, _now()
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
        state = {"launcher_pid": os.getpid(), "updated": _now(), "children": children}
        try:
            write_atomic(self.storage.supervisor_state, json.dumps(state, indent=2).encode())
        except OSError as err:  # a full or read-only disk must not take the launcher down
            say(f"! could not write {self.storage.supervisor_state}: {err.strerror}")

    async def stop(self) -> None:
        for child in reversed(self.children):
            await child.stop()
            if child.state != "given-up":
                child.state, child.since = "stopped", _now()
        self._write_state()
