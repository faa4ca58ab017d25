"""What the Admin page shows of the engine: whether it answers, how many workers poll, and where it is.

`probe_temporal` is the one reachability check (the health view, the outage banner and the API use it);
`unreachable` is the one place that decides whether an exception means "Temporal cannot be reached".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

UNREACHABLE = "Temporal is not reachable"
PROBE_TIMEOUT = 2.0  # seconds; a server that answers slower than this is as good as down for the UI


@dataclass
class Health:
    """Whether the engine answers, and how many worker processes poll the training queue."""

    temporal: bool
    workers: int
    error: str | None = None  # why Temporal did not answer, when it did not


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
