"""The launcher's child processes: start them, wait until each is up, restart a crashed worker, stop them in order.

Each child runs in its own session so that Ctrl-C reaches the launcher only, which then stops the
children in reverse order. Logs go to <home>/logs/; a child that dies early gets its log tail printed.
The command lines come from launcher.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.config import PROJECT_ROOT, Settings
from core.storage import Storage

RESTART_WINDOW = 600.0  # seconds a worker must run for its crash count to start again


class LaunchError(Exception):
    """A start-up problem with one line telling the user what to do."""


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)

    async def start(self, env: dict[str, str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
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


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = Storage(settings.home)
        self.logs = settings.home / "logs"
        self.children: list[Child] = []
        self.env = {**os.environ, "TRAINEASY_HOME": str(settings.home), "PYTHONUNBUFFERED": "1"}

    def _child(self, name: str, argv: list[str]) -> Child:
        child = Child(name, argv, self.logs / f"{name}.log")
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
        child = self._child("temporal", argv)
        await child.start(self.env)
        await wait_until(self._temporal_ready, "Temporal", child, 90)
        done(s_)
        await self.set_retention()

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
        workers = [self._child(f"worker-{i + 1}", list(argv)) for i in range(n)]
        for w in workers:
            await w.start(self.env)

        async def polling() -> bool:
            if not all(w.alive for w in workers):
                dead = next(w for w in workers if not w.alive)
                raise LaunchError(f"{dead.name} exited while starting; last lines of {dead.log}:\n{dead.tail()}")
            return await count_pollers(self.client, self.settings.task_queue) >= n

        await wait_until(polling, "the workers", None, 120)
        done(s_)

    async def start_app(self, argv: list[str], env: dict[str, str]) -> None:
        s = self.settings
        s_ = step(f"starting the Streamlit app on port {s.app_port}")
        child = self._child("streamlit", argv)
        await child.start({**self.env, **env})
        await wait_until(
            http_ok(f"{'https' if s.tls else 'http'}://127.0.0.1:{s.app_port}/_stcore/health"), "Streamlit", child, 90
        )
        done(s_)

    async def supervise(self, stop: asyncio.Event) -> int:
        """Wait for Ctrl-C; restart a crashed worker, give up if the server or the app dies."""
        while not stop.is_set():
            for child in self.children:
                if child.alive:
                    continue
                if child.name.startswith("worker") and time.monotonic() - child.started > RESTART_WINDOW:
                    child.restarts = 0  # it ran fine for a while: an occasional crash is not a crash loop
                if child.name.startswith("worker") and child.restarts < 5:
                    child.restarts += 1
                    print(
                        f"  ! {child.name} exited (code {child.returncode}); restarting ({child.restarts}/5). Log: {child.log}",
                        flush=True,
                    )
                    await child.start(self.env)
                else:
                    print(
                        f"  ! {child.name} exited (code {child.returncode}); stopping. "
                        f"Last lines of {child.log}:\n{child.tail()}",
                        flush=True,
                    )
                    return 1
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
        return 0

    async def stop(self) -> None:
        for child in reversed(self.children):
            await child.stop()
