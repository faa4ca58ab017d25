"""The service's workflow metrics (the API's `metrics`): runs by status, the success rate, run durations by
model and the CPU seconds of the fits, for the acting user or, for an admin who asks, for everyone. Counts
come from Temporal's visibility store (no worker needed), CPU seconds from the model registry's cards."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from temporalio.client import Client

from core.accounts import Accounts, User
from core.registry import Registry
from core.storage import Storage
from orchestration.contracts import MODEL
from orchestration.errors import Forbidden
from orchestration.listing_calls import STATUS_QUERY

SAMPLE = 1000  # completed runs whose durations are read (the newest); counts cover every run
CLOSED = ("completed", "failed", "cancelled", "terminated", "timed_out")
STATUS_WORDS = {v: k for k, v in STATUS_QUERY.items()}  # Temporal's "Canceled" -> "cancelled"


@dataclass
class ModelDurations:
    """Seconds from start to close of the completed runs of one model."""

    model: str
    runs: int
    mean_s: float
    median_s: float
    max_s: float


@dataclass
class WorkflowMetrics:
    scope: str  # the user's name, or "all" (an admin's view of everyone)
    runs_by_status: dict[str, int] = field(default_factory=dict)  # training runs (batch children included)
    batches_by_status: dict[str, int] = field(default_factory=dict)
    success_rate: float | None = None  # completed / closed training runs; None before any closed
    durations: list[ModelDurations] = field(default_factory=list)  # by model, most runs first
    durations_sampled: int = 0  # completed runs read for the durations (at most SAMPLE, the newest)
    cpu_seconds: float = 0.0  # the fits of the registered models (their cards' costs)
    models_registered: int = 0


def success_rate(by_status: dict[str, int]) -> float | None:
    closed = sum(by_status.get(s, 0) for s in CLOSED)
    return round(by_status.get("completed", 0) / closed, 4) if closed else None


def durations_by_model(rows: Iterable[tuple[str, float]]) -> list[ModelDurations]:
    """(model, seconds) of completed runs -> one row per model, most runs first, then by name."""
    seconds: dict[str, list[float]] = defaultdict(list)
    for model, s in rows:
        seconds[model or "?"].append(s)
    out = [
        ModelDurations(m, len(v), round(statistics.fmean(v), 3), round(statistics.median(v), 3), round(max(v), 3))
        for m, v in seconds.items()
    ]
    return sorted(out, key=lambda d: (-d.runs, d.model))


class MetricsCalls:
    """Mixed into TrainEasyService, whose client, storage and registry these read."""

    client: Client
    storage: Storage
    registry: Registry

    async def workflow_metrics(self, user: User, everyone: bool = False) -> WorkflowMetrics:
        """The user's metrics; `everyone` (admins only, else Forbidden) for all users together."""
        if everyone and not user.is_admin:
            raise Forbidden("Only an administrator can see everyone's metrics.")
        owner = "" if everyone else f"Owner = '{user.name}' AND "  # the name passed USERNAME_RE
        runs = await self._by_status(f"{owner}RunKind = 'train'")
        batches = await self._by_status(f"{owner}RunKind = 'batch'")
        rows = []
        async for wf in self.client.list_workflows(f"{owner}RunKind = 'train' AND ExecutionStatus = 'Completed'", limit=SAMPLE):
            if wf.start_time and wf.close_time:
                rows.append((wf.typed_search_attributes.get(MODEL) or "", (wf.close_time - wf.start_time).total_seconds()))
        owners = [a.name for a in Accounts(self.storage).list()] if everyone else [user.name]
        records = [r for name in owners for r in self.registry.list(name)]
        return WorkflowMetrics(
            scope="all" if everyone else user.name,
            runs_by_status=runs,
            batches_by_status=batches,
            success_rate=success_rate(runs),
            durations=durations_by_model(rows),
            durations_sampled=len(rows),
            cpu_seconds=round(sum(r.costs.get("cpu_seconds", 0.0) for r in records), 3),
            models_registered=len(records),
        )

    async def _by_status(self, query: str) -> dict[str, int]:
        counted = await self.client.count_workflows(f"{query} GROUP BY ExecutionStatus")
        out: dict[str, int] = {}
        for group in counted.groups:
            raw = str(group.group_values[0]) if group.group_values else ""
            word = STATUS_WORDS.get(raw, raw.lower())
            out[word] = out.get(word, 0) + group.count
        return out
