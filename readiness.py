"""The launcher's start-up checks and console lines: a free port, a health URL, a polling worker, waiting for one
(or for Ctrl-C)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable

from child_process import Child, LaunchError


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


async def unless_stopped(stop: asyncio.Event, awaitable: Awaitable) -> bool:
    """Await `awaitable` unless Ctrl-C comes first: False if it did."""
    task = asyncio.ensure_future(awaitable)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    for t in (task, stopping):
        t.cancel()
    return not stop.is_set()


async def answers(check: Callable[[], Awaitable[bool]]) -> bool:
    """`check()`'s answer; an exception (not up yet) is False."""
    try:
        return await check()
    except Exception:  # not up yet
        return False
