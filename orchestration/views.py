"""What the pages show of runs and batches, and the pure merge that builds a run's view (the maths: orchestration.progress)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import TypedSearchAttributes

from orchestration.activity_errors import plain_text
from orchestration.contracts import (
    DATASET,
    MODEL,
    RUN_KIND,
    STAGES,
    BatchProgress,
    RunFacts,
    RunProgress,
    StageHeartbeat,
    StageProgress,
    TrainRequest,
)
from orchestration.errors import NotFound
from orchestration.progress import (
    PendingActivity,
    RunSeen,
    inferred_progress,
    live_detail,
    not_back,
    number,
    percent_done,
    stage_time_left,
)


@dataclass
class RunSummary:
    run_id: str
    status: str
    model: str
    dataset_id: str
    started_at: datetime | None
    duration_s: float | None
    kind: str = ""  # "train" or "batch" (the RunKind search attribute)


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
    rereading: bool = False  # the run's own account did not answer this time: shown as last seen, being re-read
    live: StageHeartbeat = field(default_factory=StageHeartbeat)  # heartbeat details of the running activity
    attempt: int = 1  # while running: the running stage's attempt; once closed: the most any stage needed
    last_failure: str | None = None
    eta_s: float | None = None  # time left in the running stage at its observed pace; None until there is a pace
    request: TrainRequest | None = None  # what the run was started with (None: not readable)
    temporal_url: str | None = None  # the run in the Temporal UI, when there is one to link to

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def started(self) -> bool:
        """A worker has run some of it already (a stage ran, or a stage is on a later attempt)."""
        return self.attempt > 1 or self.percent > 0 or any(s.status != "pending" for s in self.stages)

    @property
    def detail(self) -> str:
        """Plain text (read back from a heartbeat): where the running stage is, e.g. "fold 2 of 5"."""
        return live_detail(self.live) if self.running else ""

    @property
    def curve(self) -> dict[str, Any]:
        """The learning curve: live from the heartbeat while fitting, else the one the fit returned."""
        return self.live.curve or self.facts.curve or {}


@dataclass
class BatchView:
    batch_id: str
    status: str
    started_at: datetime | None
    duration_s: float | None
    progress: BatchProgress | None  # None: no worker has answered yet
    child_percent: dict[str, float] = field(default_factory=dict)  # run id -> percent (running, or read once closed)
    temporal_url: str | None = None  # the batch in the Temporal UI, when there is one to link to

    def __post_init__(self) -> None:
        # children's errors as a user reads them, also those stored before plain_text existed
        for child in self.progress.children if self.progress else []:
            if child.error:
                child.error = plain_text(child.error)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def settling(self) -> bool:
        """Closed, but a child is still being cancelled (a batch closed before it waited for its children)."""
        return not self.running and self.progress is not None and any(c.status == "running" for c in self.progress.children)

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
                # a cancelled batch stars only a best it tagged (batches cancelled before they tagged it do not)
                "best": c.run_id == self.progress.best_run_id and (self.status != "cancelled" or self.progress.best_tagged),
            }
            for i, c in enumerate(done)
        ]


def build_run_summary(
    run_id: str,
    status: WorkflowExecutionStatus | None,
    attributes: TypedSearchAttributes,
    started_at: datetime | None,
    closed_at: datetime | None,
    now: datetime,
) -> RunSummary:
    """One row of the run (or batch) list, from what listing workflows returns: no query, no worker needed.

    The model and dataset are read from the search attributes, which the Temporal server stores and
    indexes in plaintext (payloads are encrypted, search attributes are not, orchestration/codec.py): a
    new column read from there is visible to whoever can reach the server, and must be set where runs
    start (contracts.run_attributes)."""
    return RunSummary(
        run_id=run_id,
        status=status_name(status),
        model=attributes.get(MODEL) or "",
        dataset_id=attributes.get(DATASET) or "",
        started_at=started_at,
        duration_s=elapsed_s(started_at, closed_at, now),
        kind=attributes.get(RUN_KIND) or "",
    )


def status_name(s: WorkflowExecutionStatus | None) -> str:
    """The status word the pages and the API use ("cancelled", not CANCELED)."""
    names = {WorkflowExecutionStatus.CANCELED: "cancelled", WorkflowExecutionStatus.CONTINUED_AS_NEW: "running"}
    return names.get(s, s.name.lower()) if s else "unknown"


def elapsed_s(started: datetime | None, closed: datetime | None, now: datetime) -> float | None:
    """Seconds from start to close (or to now while open); None without a start time."""
    return ((closed or now) - started).total_seconds() if started else None


def temporal_ui_url(base: str, namespace: str, workflow_id: str) -> str | None:
    """The workflow's page in the Temporal Web UI (None without a UI to link to)."""
    if not base:
        return None
    return f"{base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"


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
    seen: RunSeen | None = None,
) -> RunView:
    """Merge what is known of a run into the view the page shows. No I/O: the caller reads Temporal.

    `progress` is the workflow's own account (its result, its failure details or the `progress` query;
    None when no worker answered, `query_failed` then says the query was tried); `pending` are the
    activities in flight (attempt, last failure, heartbeat details); `model`/`dataset_id` come from the
    search attributes, for a run no worker has reported on yet. A progress of another run id (a result
    copied from another workflow) is never shown: NotFound. `seen` is what earlier reads of this run saw
    (updated here): the percent never drops below what was shown (a retry, a resumed fit or a cancel
    restarts a stage's steps), and the time left comes from the pace of the running stage's steps.
    """
    if progress is not None and progress.run_id != run_id:
        raise NotFound("No such run.")
    seen = seen if seen is not None else RunSeen()
    rereading = False
    if progress is not None:
        seen.progress = copy.deepcopy(progress)  # what the page falls back on when the run's worker is gone
    elif (known := seen.progress or inferred_progress(run_id, model, dataset_id, pending, seen.request)) is not None:
        # the query did not answer (the worker that held the run stopped; another picks it up within seconds):
        # show what was last seen, or what the stage a worker is running tells, not a run back at "load"
        progress, rereading = copy.deepcopy(known), query_failed and status == "running"
    # queries need a live worker: with nothing seen yet, say so instead of hanging
    waiting = query_failed and status == "running" and not rereading
    live = StageHeartbeat()
    attempt, last_failure, attempt_started, stale = 1, None, None, False
    for activity in pending:
        attempt, attempt_started = activity.attempt, activity.started
        if activity.last_failure is not None:
            last_failure = activity.last_failure
        if activity.live is not None:
            live, stale = activity.live, activity.stale
        if activity.scheduled and (activity.attempt == 1 or rereading):
            waiting = waiting or progress is None or rereading  # no worker has picked the stage up (again)
    rereading = rereading and not waiting
    if progress is None:
        progress = RunProgress(run_id, model, dataset_id, "", stage="load", stages=[StageProgress(s) for s in STAGES])
    running_stage = next((s for s in progress.stages if s.status == "running"), None)
    if running_stage is not None and pending:
        running_stage.attempt = attempt  # the workflow records a stage's attempt only when it ends
    if status != "running":
        attempt = max([1, *(s.attempt for s in progress.stages)])
        if running_stage is not None and status != "completed":
            # ended from outside (terminated, timed out): the workflow never recorded the stage's end
            running_stage.status = "failed" if status == "failed" else "cancelled"
        running_stage = None
    duration = elapsed_s(started_at, closed_at, now)
    percent = 100.0 if status == "completed" else max(percent_done(progress.stages, live), seen.percent)
    seen.percent = percent
    eta = None
    if status == "running" and running_stage is not None and number(live.step) is not None and not stale:
        # (an earlier attempt's heartbeat, with this attempt's start, would give a pace from nothing)
        paced_from = seen.saw_step(running_stage.name, attempt, live, now)
        eta = stage_time_left(live, attempt_started, seen.step_seen, now, paced_from)
    if running_stage is not None:
        live = not_back(live, running_stage.name, seen)
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
        rereading=rereading,
        live=live,
        attempt=attempt,
        last_failure=plain_text(last_failure) if last_failure else None,
        eta_s=eta,
        request=seen.request,
    )
