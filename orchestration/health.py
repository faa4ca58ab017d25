"""The engine's health: one report (`check_health`) for the Admin page, the Home page, the launcher, the
machine-readable check (`python -m orchestration.health_check`) and the API.

`probe_temporal` is the one reachability check (the health view, the outage banner and the API use it);
`unreachable` is the one place that decides whether an exception means "Temporal cannot be reached".
The checks of the workers, storage, app database and launcher are orchestration/health_checks.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings
from core.storage import Storage
from orchestration.client import connect
from orchestration.contracts import io_queue
from orchestration.health_checks import (
    DEGRADED,
    DOWN,
    LOW_SPACE_BYTES,
    OK,
    Check,
    ChildRow,
    WorkerRow,
    check_database,
    check_storage,
    check_supervisor,
    check_workers,
)
from orchestration.liveness import live_workers

UNREACHABLE = "Temporal is not reachable"
PROBE_TIMEOUT = 2.0  # seconds; a server that answers slower than this is as good as down for the UI
SLOW_MS = 1000.0  # a round trip slower than this: degraded
EXIT_CODES = {OK: 0, DEGRADED: 1, DOWN: 2}  # of the machine-readable check


@dataclass
class EngineInfo:
    """Where this app's engine is, for the Admin page."""

    temporal_target: str
    namespace: str
    task_queue: str
    home: str


@dataclass(frozen=True)
class TemporalCheck:
    """One probe of the server: whether it answered within the timeout, and how fast."""

    reachable: bool
    latency_ms: float | None = None
    error: str | None = None  # why not, in a line (for logs and the admin view; no secrets in it)


def unreachable(exc: BaseException) -> bool:
    """True if `exc` means the server cannot be reached (refused, down, timed out), not that it said no.
    A lazy client that never connected raises RuntimeError("Failed client connect: …")."""
    if isinstance(exc, RPCError):
        return exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
    if isinstance(exc, RuntimeError):
        return str(exc).startswith("Failed client connect")
    return isinstance(exc, (TimeoutError, ConnectionError))


async def probe_temporal(client: Client, timeout: float = PROBE_TIMEOUT) -> TemporalCheck:
    """Ask the server for its system info once, without retries: reachable or not, and the round trip."""
    started = time.perf_counter()
    try:
        await client.workflow_service.get_system_info(GetSystemInfoRequest(), retry=False, timeout=timedelta(seconds=timeout))
    except Exception as exc:
        if not unreachable(exc):
            raise
        return TemporalCheck(False, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'no answer'}")
    return TemporalCheck(True, round((time.perf_counter() - started) * 1000, 1))


@dataclass(frozen=True)
class HealthReport:
    """Every check with its state and reason, the details the health view draws, and the overall state
    (the worst of the checks). Holds no secret and no server path: it is printed as JSON for machines."""

    state: str  # ok, degraded or down
    checks: tuple[Check, ...]
    temporal: TemporalCheck
    workers: tuple[WorkerRow, ...]
    live_workers: int  # worker processes alive on this app's queues
    free_bytes: int | None  # in the storage folder; None when it could not be read
    children: tuple[ChildRow, ...]  # the launcher's, when a launcher runs here
    checked_at: str

    @property
    def reasons(self) -> list[str]:
        """Why it is not ok, one line per check that is not."""
        return [c.reason for c in self.checks if c.state != OK]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]

    def line(self) -> str:
        """The one line the launcher prints after start-up."""
        if self.state == OK:
            return f"Health: ok ({self.live_workers} worker{'s' if self.live_workers != 1 else ''} alive)"
        return f"Health: {self.state}: " + " ".join(self.reasons)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def overall(checks: list[Check]) -> str:
    """The worst state among the checks: any down is down, else any degraded is degraded, else ok."""
    states = {c.state for c in checks}
    return DOWN if DOWN in states else DEGRADED if DEGRADED in states else OK


def temporal_check(probe: TemporalCheck) -> Check:
    if not probe.reachable:
        return Check("temporal", DOWN, f"{UNREACHABLE}: no run can start and running ones wait.")
    if probe.latency_ms is not None and probe.latency_ms > SLOW_MS:
        return Check("temporal", DEGRADED, f"Temporal answers slowly ({probe.latency_ms:.0f} ms).")
    return Check("temporal", OK, f"Temporal answers in {probe.latency_ms:.0f} ms.")


async def _probe(settings: Settings, client: Client | None) -> TemporalCheck:
    """probe_temporal on `client`, or on a fresh unencrypted connection (the probe sends no payloads)."""
    try:
        if client is None:
            client = await asyncio.wait_for(connect(settings, DataConverter.default), 2 * PROBE_TIMEOUT)
        return await probe_temporal(client)
    except Exception as exc:  # not a way of being unreachable that probe_temporal knows: still no answer
        line = str(exc).splitlines()[0][:200] if str(exc) else "no answer"
        return TemporalCheck(False, None, f"{type(exc).__name__}: {line}")


async def check_health(
    settings: Settings, client: Client | None = None, low_space: int = LOW_SPACE_BYTES, now: datetime | None = None
) -> HealthReport:
    """Temporal (reachable, latency), the live workers per queue, storage (writable, free space), the app
    database and the launcher's children; `client` None connects for this check only."""
    storage = Storage(settings.home)
    probe = await _probe(settings, client)

    def local() -> tuple[Any, ...]:  # files and SQLite: off the caller's event loop
        when = now or datetime.now(UTC)
        workers = check_workers(live_workers(storage, when), settings.task_queue, io_queue(settings.task_queue), when)
        return workers, check_storage(storage, low_space), check_database(storage), check_supervisor(storage)

    (workers, rows), (disk, free), database, (supervisor, children) = await asyncio.to_thread(local)
    checks = [temporal_check(probe), workers, disk, database, supervisor]
    return HealthReport(
        state=overall(checks),
        checks=tuple(checks),
        temporal=probe,
        workers=tuple(rows),
        live_workers=len({r.worker for r in rows}),
        free_bytes=free,
        children=tuple(children),
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
