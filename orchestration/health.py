"""The engine's health: one report (`check_health`) for the Admin page, the Home page, the launcher, the
machine-readable check (`python -m orchestration.health_check`) and the API.

`probe_temporal` is the one reachability check (the health view, the outage banner and the API use it), with
three outcomes: it answers, it cannot be reached, or it answers but refuses (a credential, a permission, a
namespace that does not exist); `classify` is the one place that sorts an exception into them, and
`unreachable` the one that decides whether an exception means "Temporal cannot be reached".
The checks of the workers, storage, app database and launcher are orchestration/health_checks.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, GetSystemInfoRequest
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
    counted,
)
from orchestration.liveness import live_workers

UNREACHABLE = "Temporal is not reachable"
REFUSES = "Temporal answers but refuses"
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
    """One probe of the server: whether it answered within the timeout, how fast, and whether it refused."""

    reachable: bool
    latency_ms: float | None = None
    error: str | None = None  # why not, in a line (for logs and the admin view; no secrets in it)
    refused: str | None = None  # it answered but refuses this app, in plain words (reachable stays True)

    @property
    def usable(self) -> bool:
        """It answers and does not refuse: runs can start."""
        return self.reachable and self.refused is None

    def reason(self) -> str:
        """ "Temporal is not reachable" or "Temporal answers but refuses: <plain reason>"."""
        return f"{REFUSES}: {self.refused}" if self.refused else UNREACHABLE


def unreachable(exc: BaseException) -> bool:
    """True if `exc` means the server cannot be reached (refused, down, timed out), not that it said no.
    A lazy client that never connected raises RuntimeError("Failed client connect: …")."""
    if isinstance(exc, RPCError):
        return exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
    if isinstance(exc, RuntimeError):
        return str(exc).startswith("Failed client connect")
    return isinstance(exc, (TimeoutError, ConnectionError))


# what the SDK's transport errors mean, in the words an operator reads on the Admin page and in the JSON
_PLAIN_CAUSES = (
    ("connection refused", "connection refused (nothing listens at the address)"),
    ("dns error", "the server's name does not resolve"),
    ("failed to lookup address", "the server's name does not resolve"),
    ("deadline", f"no answer within {PROBE_TIMEOUT:g} s"),
    ("timed out", f"no answer within {PROBE_TIMEOUT:g} s"),
    ("tls", "the TLS handshake failed"),
)


def error_line(exc: BaseException) -> str:
    """An exception in one line, for logs and the admin view: "connection refused (nothing listens at the
    address)" for the transport errors we know, else "<class>: <first line>"."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, TimeoutError):
        return f"no answer within {PROBE_TIMEOUT:g} s"
    for needle, plain in _PLAIN_CAUSES:
        if needle in lowered:
            return plain
    return f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else 'no answer'}"


def refusal(exc: RPCError, namespace: str) -> str:
    """Why a server that answered said no, in words an operator acts on."""
    if exc.status == RPCStatusCode.UNAUTHENTICATED:
        return "it does not accept the app's credentials (check the TLS client certificate or API key)"
    if exc.status == RPCStatusCode.PERMISSION_DENIED:
        return f"the app may not use the namespace {namespace!r} (permission denied)"
    if exc.status == RPCStatusCode.NOT_FOUND:
        return f"the namespace {namespace!r} does not exist there (TEMPORAL_NAMESPACE)"
    return f"it answered {exc.status.name if exc.status else 'an error'}: {exc.message[:200]}"


def classify(exc: BaseException, namespace: str) -> TemporalCheck:
    """The one sorting of a failed probe: not reachable, or answering but refusing (an RPC error of another kind)."""
    if isinstance(exc, RPCError) and not unreachable(exc):
        return TemporalCheck(True, None, error_line(exc), refusal(exc, namespace))
    return TemporalCheck(False, None, error_line(exc))  # refused, down, timed out, or no answer we understand


async def probe_temporal(client: Client, timeout: float = PROBE_TIMEOUT) -> TemporalCheck:
    """Ask the server once, without retries, for its system info and this app's namespace: reachable or not,
    refusing or not, and the round trip. Never raises (but for cancellation)."""
    started = time.perf_counter()
    wait = timedelta(seconds=timeout)
    try:
        await client.workflow_service.get_system_info(GetSystemInfoRequest(), retry=False, timeout=wait)
        latency = round((time.perf_counter() - started) * 1000, 1)
        request = DescribeNamespaceRequest(namespace=client.namespace)  # a wrong or forbidden namespace says so
        await client.workflow_service.describe_namespace(request, retry=False, timeout=wait)
    except Exception as exc:
        return classify(exc, client.namespace)
    return TemporalCheck(True, latency)


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
            return f"Health: ok ({counted(self.live_workers, 'worker')} alive)"
        return f"Health: {self.state}: " + " ".join(self.reasons)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def overall(checks: list[Check]) -> str:
    """The worst state among the checks: any down is down, else any degraded is degraded, else ok."""
    states = {c.state for c in checks}
    return DOWN if DOWN in states else DEGRADED if DEGRADED in states else OK


def temporal_check(probe: TemporalCheck) -> Check:
    if not probe.usable:
        return Check("temporal", DOWN, f"{probe.reason()}: no run can start and running ones wait.")
    if probe.latency_ms is not None and probe.latency_ms > SLOW_MS:
        return Check("temporal", DEGRADED, f"Temporal answers slowly ({probe.latency_ms:.0f} ms).")
    return Check("temporal", OK, f"Temporal answers in {probe.latency_ms:.0f} ms.")


async def _probe(settings: Settings, client: Client | None) -> TemporalCheck:
    """probe_temporal on `client`, or on a fresh unencrypted connection (the probe sends no payloads)."""
    try:
        if client is None:
            client = await asyncio.wait_for(connect(settings, DataConverter.default), 2 * PROBE_TIMEOUT)
    except Exception as exc:
        return classify(exc, settings.namespace)
    return await probe_temporal(client)


async def check_health(
    settings: Settings, client: Client | None = None, low_space: int = LOW_SPACE_BYTES, now: datetime | None = None
) -> HealthReport:
    """Temporal (reachable, latency), the live workers per queue, storage (writable, free space), the app
    database and the launcher's children; `client` None connects for this check only."""
    storage = Storage(settings.home)
    probe = await _probe(settings, client)

    def local() -> tuple[Any, ...]:  # files and SQLite: off the caller's event loop
        when = now or datetime.now(UTC)
        disk, free, state_writable = check_storage(storage, low_space)
        alive = live_workers(storage, when)
        workers = check_workers(alive, settings.task_queue, io_queue(settings.task_queue), when, probe.usable, state_writable)
        return workers, (disk, free), check_database(storage), check_supervisor(storage)

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


# What a user who is not an admin reads on Home: the overall state in their terms, never the launcher's
# processes, log files or server words (those are the admins', on Admin → Engine and their Home).
USER_SENTENCES = {
    "temporal": "Training is unavailable right now: the training engine cannot be reached. Your runs are kept and "
    "carry on once it is back.",
    "workers": "Training is paused right now: runs you launch wait until the training service is back.",
    "storage": "Uploads and model saves are failing right now.",
    "database": "The app's records cannot be read right now.",
}


def user_summary(report: HealthReport) -> str:
    """The overall state in one sentence for a user who is not an admin."""
    if report.state == OK:
        return "Training is available."
    down = [c.name for c in report.checks if c.state == DOWN and c.name in USER_SENTENCES]
    if "temporal" in down and "workers" in down:
        down.remove("workers")  # with the engine down, idle workers are no news to a user
    if down:
        return " ".join(USER_SENTENCES[name] for name in down) + " An administrator can see the details."
    return "Training is running at reduced capacity: some tasks may take longer than usual."
