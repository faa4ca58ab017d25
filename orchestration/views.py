"""What the pages show of runs and batches, and the pure maths that builds it (status, percent, ETA)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from orchestration.activity_errors import plain_text
from orchestration.contracts import STAGE_WEIGHTS, STAGES, BatchProgress, RunFacts, RunProgress, StageProgress
from orchestration.errors import NotFound


@dataclass
class RunSummary:
    run_id: str
    status: str
    model: str
    dataset_id: str
    started_at: datetime | None
    duration_s: float | None


@dataclass
class RunView:
    """Everything the run page shows, merged from the workflow's progress query, describe() and the result."""

    run_id: str
    status: str  # running | completed | failed | cancelled | terminated | timed_out
    model: str
    dataset_id: str
    target: str
    started_at: datetime | None
    duration_s: float | None
    stage: str
    percent: float
    stages: list[StageProgress] = field(default_factory=list)
    facts: RunFacts = field(default_factory=RunFacts)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    waiting_for_worker: bool = False
    live: dict[str, Any] = field(default_factory=dict)  # heartbeat details of the running activity
    attempt: int = 1
    last_failure: str | None = None
    eta_s: float | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def curve(self) -> dict[str, Any]:
        """The learning curve: live from the heartbeat while fitting, else the one the fit returned."""
        return self.live.get("curve") or self.facts.curve or {}


@dataclass
class BatchView:
    batch_id: str
    status: str
    started_at: datetime | None
    duration_s: float | None
    progress: BatchProgress | None  # None: no worker has answered yet
    child_percent: dict[str, float] = field(default_factory=dict)  # run id -> percent, running children

    def __post_init__(self) -> None:
        # children's errors as a user reads them, also those stored before plain_text existed
        for child in self.progress.children if self.progress else []:
            if child.error:
                child.error = plain_text(child.error)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def leaderboard(self) -> list[dict[str, Any]]:
        """Finished children, best first by the primary metric."""
        if self.progress is None:
            return []
        metric = self.progress.primary_metric
        done = [c for c in self.progress.children if c.status == "completed" and metric in c.metrics]
        done.sort(key=lambda c: c.metrics[metric], reverse=True)
        return [
            {
                "rank": i + 1,
                "model": c.model,
                "params": c.params,
                **c.metrics,
                "seconds": c.seconds,
                "worker": c.worker,
                "run_id": c.run_id,
                "best": c.run_id == self.progress.best_run_id,
            }
            for i, c in enumerate(done)
        ]


@dataclass
class EngineInfo:
    """Where this app's engine is, for the Admin page."""

    temporal_target: str
    namespace: str
    task_queue: str
    home: str


@dataclass
class PendingActivity:
    """One activity in flight as describe() reports it, already decoded (see orchestration.run_reader)."""

    attempt: int
    scheduled: bool  # scheduled, not yet picked up by a worker
    last_failure: str | None = None  # None: no failure reported
    live: dict[str, Any] | None = None  # heartbeat details; None: no heartbeat reported


def status_name(s: WorkflowExecutionStatus | None) -> str:
    """The status word the pages and the API use ("cancelled", not CANCELED)."""
    names = {WorkflowExecutionStatus.CANCELED: "cancelled", WorkflowExecutionStatus.CONTINUED_AS_NEW: "running"}
    return names.get(s, s.name.lower()) if s else "unknown"


def elapsed_s(started: datetime | None, closed: datetime | None, now: datetime) -> float | None:
    """Seconds from start to close (or to now while open); None without a start time."""
    return ((closed or now) - started).total_seconds() if started else None


def percent_done(stages: list[StageProgress], live: dict[str, Any]) -> float:
    """Share of the run's work done, by stage weight; the running stage counts its heartbeat's step of `of`."""
    counted = [s for s in stages if s.status != "skipped"]
    done = sum(STAGE_WEIGHTS[s.name] for s in counted if s.status == "done")
    running = next((s for s in counted if s.status == "running"), None)
    if running is not None and live.get("of"):
        done += STAGE_WEIGHTS[running.name] * min(1.0, live.get("step", 0) / live["of"])
    return round(100.0 * done / sum(STAGE_WEIGHTS[s.name] for s in counted), 1)


def remaining_s(percent: float, elapsed: float | None) -> float | None:
    """Remaining seconds at the pace so far; None until there is enough progress to say."""
    if elapsed is None or not 5.0 <= percent < 100.0:
        return None
    return round(elapsed * (100.0 - percent) / percent, 1)


def build_run_view(
    run_id: str,
    status: str,
    progress: RunProgress | None,
    *,
    query_failed: bool = False,
    pending: Sequence[PendingActivity] = (),
    model: str = "",
    dataset_id: str = "",
    started_at: datetime | None = None,
    closed_at: datetime | None = None,
    now: datetime,
) -> RunView:
    """Merge what is known of a run into the view the page shows. Pure: the caller reads Temporal.

    `progress` is the workflow's own account (its result, its failure details or the `progress` query;
    None when no worker answered, `query_failed` then says the query was tried); `pending` are the
    activities in flight (attempt, last failure, heartbeat details); `model`/`dataset_id` come from the
    search attributes, for a run no worker has reported on yet. A progress of another run id (a result
    copied from another workflow) is never shown: NotFound.
    """
    if progress is not None and progress.run_id != run_id:
        raise NotFound("No such run.")
    waiting = query_failed and status == "running"  # queries need a live worker; say so instead of hanging
    live: dict[str, Any] = {}
    attempt, last_failure = 1, None
    for activity in pending:
        attempt = activity.attempt
        if activity.last_failure is not None:
            last_failure = activity.last_failure
        if activity.live is not None:
            live = activity.live
        if activity.scheduled and activity.attempt == 1:
            waiting = waiting or progress is None
    if progress is None:
        progress = RunProgress(run_id, model, dataset_id, "", stage="load", stages=[StageProgress(s) for s in STAGES])
    duration = elapsed_s(started_at, closed_at, now)
    percent = 100.0 if status == "completed" else percent_done(progress.stages, live)
    return RunView(
        run_id=run_id,
        status=status,
        model=progress.model,
        dataset_id=progress.dataset_id,
        target=progress.target,
        started_at=started_at,
        duration_s=duration,
        stage=progress.stage,
        percent=percent,
        stages=progress.stages,
        facts=progress.facts,
        metrics=progress.metrics,
        error=plain_text(progress.error) if progress.error else None,
        waiting_for_worker=waiting,
        live=live,
        attempt=attempt,
        last_failure=plain_text(last_failure) if last_failure else None,
        eta_s=remaining_s(percent, duration) if status == "running" else None,
    )
