"""The run page's progress maths: percent done, time left at the observed pace, the live detail, what earlier reads saw."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from orchestration.contracts import STAGE_WEIGHTS, STAGES, RunProgress, StageHeartbeat, StageProgress, TrainRequest

UNITS = frozenset({"tree", "iteration", "epoch"})  # what a fit's step may be named on the page (else "step")


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
    """What this process saw of one run on earlier reads: the percent it showed (never shown lower again), the
    running stage's steps and when they were first seen (the pace), and what never changes once read."""

    percent: float = 0.0
    step: tuple[str, int, float] | None = None  # (stage, attempt, step)
    step_seen: datetime | None = None
    paced_from: tuple[str, int, float, datetime] | None = None  # (stage, attempt, step, when): see saw_step
    request: TrainRequest | None = None
    request_read: bool = False  # read from the history once, found or not
    closed_attempts: dict[str, int] | None = None  # stage -> attempts, of a closed run (from its history)
    progress: RunProgress | None = None  # the run's own account, as last read: shown while it does not answer
    shown_step: tuple[str, int] | None = None  # (stage, step) the detail last showed: it never goes back
    query_failed_at: float | None = None  # time.monotonic() of the last progress query no worker answered

    def saw_step(self, stage: str, attempt: int, live: StageHeartbeat, now: datetime) -> tuple[float, datetime] | None:
        """Note the running stage's step, read at `now`, and when it was first seen. Returns where the pace is
        measured from: the first step of this attempt seen to begin (a read found the step before it), with
        when, or None before one has: a step seen on the first read may have begun long before (a page opened
        in the middle of a long step)."""
        step = number(live.step)
        assert step is not None
        key = (stage, attempt, step)
        if self.step != key:
            moved = self.step is not None and self.step[:2] == key[:2] and self.step[2] < step
            if moved and (self.paced_from is None or self.paced_from[:2] != key[:2]):
                self.paced_from = (*key, now)
            self.step, self.step_seen = key, now
        if self.paced_from is None or self.paced_from[:2] != key[:2]:
            return None
        return self.paced_from[2:]


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


def percent_done(stages: list[StageProgress], live: StageHeartbeat) -> float:
    """Share of the run's work done, by stage weight; the running stage counts its heartbeat's step of `of`."""
    counted = [s for s in stages if s.status != "skipped"]
    done: float = sum(STAGE_WEIGHTS[s.name] for s in counted if s.status == "done")
    running = next((s for s in counted if s.status == "running"), None)
    if running is not None and live.of:
        done += STAGE_WEIGHTS[running.name] * min(1.0, (live.step or 0) / live.of)
    return round(100.0 * done / sum(STAGE_WEIGHTS[s.name] for s in counted), 1)


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# A pace taken from the attempt's start counts its start-up (the data, the fit's process, a probe fit: a few
# seconds) as steps' time: at tree 2 of a 300-tree forest it read 10 minutes for a 24 s fit. It is shown only at
# this many seconds a step or more, where the steps are most of it; faster stages show no time left until two of
# their steps have been seen to begin (two reads of the page, a few seconds).
SLOW_STEP_SECONDS = 10.0


def stage_time_left(
    live: StageHeartbeat,
    attempt_started: datetime | None,
    step_seen: datetime | None,
    now: datetime,
    paced_from: tuple[float, datetime] | None = None,
) -> float | None:
    """Seconds left in the running stage at the pace it has shown. The pace: from `paced_from` (the first step
    seen to begin in this attempt, and when: RunSeen.saw_step) to the current step, when it was first seen; until
    a later step has been seen, the steps this attempt finished (after any it resumed from) over the time since
    it started, if that is slow enough to trust (SLOW_STEP_SECONDS). None until there is a pace; 0 once every step
    is done (only the stage's wrap-up is left). While a step takes longer than that pace, the estimate counts
    down to the steps after it (it does not climb while nothing moves)."""
    step, of = number(live.step), number(live.of)
    first = number(live.resumed_from) or 0.0
    if step is None or not of or attempt_started is None or step_seen is None or step - first <= 0:
        return None
    left = max(of - step, 0.0)
    if not left:
        return 0.0
    if paced_from is not None and step > paced_from[0]:
        per_step = (step_seen - paced_from[1]).total_seconds() / (step - paced_from[0])
    else:
        per_step = (step_seen - attempt_started).total_seconds() / (step - first)
        if per_step < SLOW_STEP_SECONDS:
            return None
    if per_step <= 0:
        return None
    since = (now - step_seen).total_seconds()
    return round(max(per_step * left - since, per_step * (left - 1), 0.0), 1)


def inferred_progress(
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


def not_back(live: StageHeartbeat, stage: str, seen: RunSeen) -> StageHeartbeat:
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
    unit = live.unit if isinstance(live.unit, str) and live.unit in UNITS else "step"
    word, done = ("fold", live.fold) if live.fold is not None else (unit, live.step)
    parts = []
    if word == "fold" or (live.step is not None and (number(of) or 0) > 1):
        parts.append(f"{word} {_under_way(done, of)} of {of}")
    if isinstance(live.part, str):
        parts.append(live.part)
    if live.resumed_from:
        parts.append(f"resumed after {word} {live.resumed_from}")
    return " · ".join(parts)


def _under_way(done: int | None, of: int | None) -> str:
    """The fold or step under way when `done` of them have finished (the last one once all have)."""
    d, o = number(done), number(of)
    return f"{min(d + 1, o):g}" if d is not None and o else str(done)
