"""Heartbeats from a side thread while an activity's body runs, and the process's memory as it goes."""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from temporalio import activity

from orchestration.contracts import StageHeartbeat

F = TypeVar("F", bound=Callable[..., Any])

HEARTBEAT_SECONDS = 1.0


def rss_mb() -> float:
    """Resident memory of this process now (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@contextmanager
def heartbeating(details: Callable[[], StageHeartbeat]) -> Iterator[dict[str, float]]:
    """Heartbeat `details()` every second from a side thread while the body runs in the activity thread.

    A single long fit then still reports progress and keeps the heartbeat timeout alive, and a
    cancellation (raised by the SDK in the activity thread) still lands: between a stage's steps (the
    permutation importance's predictions), or in the short polls with which the activity thread waits for a
    child-process fit (ml/child_fit.py), which is then killed. Also samples peak memory (of this process; a
    child reports its own).
    """
    stop = threading.Event()
    peak = {"rss_mb": rss_mb()}

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            peak["rss_mb"] = max(peak["rss_mb"], rss_mb())
            activity.heartbeat(details())

    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True)
    # the first beat comes after a second, not at once: a stage shorter than that (most on small data) makes no
    # heartbeat call, each an RPC through the worker's event loop to the server (~1 ms a stage, 5 ms of a tiny run)
    # A cancel landing while the thread starts would be delivered to the new thread (it still carries
    # this thread's id) and kill it before it runs; shield the start so the cancel waits for the body.
    with activity.shield_thread_cancel_exception():
        thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak["rss_mb"] = max(peak["rss_mb"], rss_mb())


@contextmanager
def alive() -> Iterator[None]:
    """Heartbeats with no progress in them, for a short stage (load, preprocess, save): the server then notices
    within its heartbeat timeout that a worker died or that its completion never arrived (a Temporal outage),
    instead of after the stage's whole time limit. A cancel is not raised inside the body (it would stop a
    registration half-way); the workflow decides what a cancelled short stage means."""
    with activity.shield_thread_cancel_exception(), heartbeating(StageHeartbeat):
        yield


def keeps_alive(fn: F) -> F:
    """Run the activity method `fn` inside `alive()` (put it under @activity.defn)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with alive():
            return fn(*args, **kwargs)

    return cast(F, wrapper)
