"""What the pages show of runs and batches, and the pure maths that builds it (status, percent, ETA)."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import TypedSearchAttributes

from orchestration.activity_errors import plain_text
from orchestration.contracts import (
    DATASET,
    MODEL,
    STAGE_WEIGHTS,
    STAGES,
    BatchProgress,
    RunFacts,
    RunProgress,
    StageHeartbeat,
    StageProgress,
    TrainRequest,
)
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


@dataclass
class ClassCurve:
    """One class's precision-recall curve (one-vs-rest), downsampled."""

    label: str
    x: list[float]
    y: list[float]


@dataclass
class RocCurve(ClassCurve):
    """One class's ROC curve (one-vs-rest), downsampled, and the area under it."""

    auc: float


@dataclass
class FeatureImportance:
    """Permutation importance of one input column on the held-out rows."""

    feature: str
    importance: float
    std: float


@dataclass
class Evaluation:
    """A finished run's held-out evaluation, as its page draws it: the run's evaluation.json (written by the
    evaluate stage from ml.evaluation; its format is unchanged, this is how it is read)."""

    metrics: dict[str, float] = field(default_factory=dict)
    # classification: the class labels, the confusion matrix (actual x predicted) and the curves
    labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    roc: list[RocCurve] = field(default_factory=list)
    pr: list[ClassCurve] = field(default_factory=list)
    # regression: a sample of the test rows
    actual: list[float] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)
    importance: list[FeatureImportance] = field(default_factory=list)  # most important first


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


@dataclass
class PendingActivity:
    """One activity in flight as describe() reports it, already decoded (see orchestration.run_reader)."""

    attempt: int
    scheduled: bool  # scheduled, not yet picked up by a worker
    last_failure: str | None = None  # None: no failure reported
    live: StageHeartbeat | None = None  # heartbeat details; None: no heartbeat reported
    started: datetime | None = None  # when a worker started the current attempt
    heartbeat_at: datetime | None = None  # when `live` was sent: before `started`, it is an earlier attempt's
    stage: str | None = None  # the training stage this activity runs (None: not a stage's activity)

    @property
    def stale(self) -> bool:
        """The heartbeat details are an earlier attempt's (Temporal keeps them until the new one heartbeats)."""
        return self.started is not None and self.heartbeat_at is not None and self.heartbeat_at < self.started


@dataclass
class RunSeen:
    """What this process saw of one run on earlier reads: the percent it showed (never shown lower again), when
    the running stage's current step was first seen (the pace), and what never changes once read."""

    percent: float = 0.0
    step: tuple[str, int, float] | None = None  # (stage, attempt, step)
    step_seen: datetime | None = None
    request: TrainRequest | None = None
    request_read: bool = False  # read from the history once, found or not
    closed_attempts: dict[str, int] | None = None  # stage -> attempts, of a closed run (from its history)
    progress: RunProgress | None = None  # the run's own account, as last read: shown while it does not answer
    shown_step: tuple[str, int] | None = None  # (stage, step) the detail last showed: it never goes back


class RunWatch:
    """RunSeen per run id, for the runs this process reads; the least recently read are forgotten first."""

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._runs: OrderedDict[str, RunSeen] = OrderedDict()

    def __call__(self, run_id: str) -> RunSeen:
        seen = self._runs.pop(run_id, None) or RunSeen()
        self._runs[run_id] = seen
        while len(self._runs) > self._size:
            self._runs.popitem(last=False)
        return seen


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
    )


def status_name(s: WorkflowExecutionStatus | None) -> str:
    """The status word the pages and the API use ("cancelled", not CANCELED)."""
    names = {WorkflowExecutionStatus.CANCELED: "cancelled", WorkflowExecutionStatus.CONTINUED_AS_NEW: "running"}
    return names.get(s, s.name.lower()) if s else "unknown"


def elapsed_s(started: datetime | None, closed: datetime | None, now: datetime) -> float | None:
    """Seconds from start to close (or to now while open); None without a start time."""
    return ((closed or now) - started).total_seconds() if started else None


def percent_done(stages: list[StageProgress], live: StageHeartbeat) -> float:
    """Share of the run's work done, by stage weight; the running stage counts its heartbeat's step of `of`."""
    counted = [s for s in stages if s.status != "skipped"]
    done: float = sum(STAGE_WEIGHTS[s.name] for s in counted if s.status == "done")
    running = next((s for s in counted if s.status == "running"), None)
    if running is not None and live.of:
        done += STAGE_WEIGHTS[running.name] * min(1.0, (live.step or 0) / live.of)
    return round(100.0 * done / sum(STAGE_WEIGHTS[s.name] for s in counted), 1)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def stage_time_left(
    live: StageHeartbeat, attempt_started: datetime | None, step_seen: datetime | None, now: datetime
) -> float | None:
    """Seconds left in the running stage at the pace it has shown: the steps this attempt finished (after
    any it resumed from) over the time they took, until its current step was first seen. None until a step
    has finished, so there is a pace. While a step takes longer than that pace, the estimate counts down
    to the steps after it (it does not climb while nothing moves)."""
    step, of = _num(live.step), _num(live.of)
    first = _num(live.resumed_from) or 0.0
    if step is None or not of or attempt_started is None or step_seen is None or step - first <= 0:
        return None
    per_step = (step_seen - attempt_started).total_seconds() / (step - first)
    if per_step <= 0:
        return None
    left = max(of - step, 0.0)
    since = (now - step_seen).total_seconds()
    return round(max(per_step * left - since, per_step * (left - 1), 0.0), 1)


def _inferred_progress(
    run_id: str, model: str, dataset_id: str, pending: Sequence[PendingActivity], request: TrainRequest | None
) -> RunProgress | None:
    """A run's progress as the activity a worker is running tells it (None without one): that stage running,
    those before it done (cross-validation as the request says), those after it pending. For a run this process
    has not read before whose own account does not answer (its worker stopped, or this app restarted)."""
    stage = next((a.stage for a in pending if a.stage in STAGES and not a.scheduled), None)
    if stage is None:
        return None
    at = STAGES.index(stage)
    stages = [StageProgress(name, "running" if i == at else "pending") for i, name in enumerate(STAGES)]
    for s in stages[:at]:
        if s.name != "cv":
            s.status = "done"
        elif request is not None:
            s.status = "done" if request.cv_folds else "skipped"
    return RunProgress(run_id, model, dataset_id, request.target if request else "", stage=stage, stages=stages)


def _not_back(live: StageHeartbeat, stage: str, seen: RunSeen) -> StageHeartbeat:
    """The heartbeat as the page shows it: a stage's step (or fold) never shown lower than before in this stage.
    A retry resumes from its last checkpoint, a step or two back; the percent already holds, so does the detail
    ("step 3 of 10 · resumed after step 1", not "step 2 of 10")."""
    step = live.step if isinstance(live.step, int) and not isinstance(live.step, bool) else None
    if step is None:
        return live
    if seen.shown_step is not None and seen.shown_step[0] == stage and step < seen.shown_step[1]:
        shown = seen.shown_step[1]
        return replace(live, step=shown, fold=shown if live.fold is not None else None)
    seen.shown_step = (stage, step)
    return live


def live_detail(live: StageHeartbeat) -> str:
    """Where the running stage is, counting the fold or step under way from 1 ("fold 1 of 5" while the
    first fold fits); plain text from a heartbeat (escape it before drawing it as markdown)."""
    of = live.of
    word, done = ("fold", live.fold) if live.fold is not None else ("step", live.step)
    parts = []
    if word == "fold" or (live.step is not None and (_num(of) or 0) > 1):
        parts.append(f"{word} {_under_way(done, of)} of {of}")
    if isinstance(live.part, str):
        parts.append(live.part)
    if live.resumed_from:
        parts.append(f"resumed after {word} {live.resumed_from}")
    return " · ".join(parts)


def _under_way(done: int | None, of: int | None) -> str:
    """The fold or step under way when `done` of them have finished (the last one once all have)."""
    d, o = _num(done), _num(of)
    return f"{min(d + 1, o):g}" if d is not None and o else str(done)


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
    elif (known := seen.progress or _inferred_progress(run_id, model, dataset_id, pending, seen.request)) is not None:
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
    if status == "running" and running_stage is not None and (step := _num(live.step)) is not None and not stale:
        # (an earlier attempt's heartbeat, with this attempt's start, would give a pace from nothing)
        key = (running_stage.name, attempt, step)
        if seen.step != key:
            seen.step, seen.step_seen = key, now
        eta = stage_time_left(live, attempt_started, seen.step_seen, now)
    if running_stage is not None:
        live = _not_back(live, running_stage.name, seen)
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
