"""One child process of the launcher: its start, stop and log, and its restart bookkeeping (backoff, giving up)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.config import PROJECT_ROOT

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


def utc_now() -> str:
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
    since: str = field(default_factory=utc_now)
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
