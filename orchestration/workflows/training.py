"""The training workflow: one activity per stage, its progress query, and the registered activity name of each stage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutType, is_cancelled_exception
from temporalio.exceptions import TimeoutError as ActivityTimeout

from orchestration.workflows.policy import RETRY, failure_message

with workflow.unsafe.imports_passed_through():
    from orchestration.contracts import STAGES, WORKER_BUSY, RunProgress, StageProgress, StageResult, TrainInput, io_queue
    from orchestration.training_activities import TrainingActivities

# stage -> (activity, start-to-close timeout, heartbeat timeout)
_STAGE_ACTIVITIES: dict[str, tuple[Any, timedelta, timedelta | None]] = {
    "load": (TrainingActivities.load_and_validate, timedelta(minutes=10), None),
    "preprocess": (TrainingActivities.preprocess_split, timedelta(minutes=10), None),
    "cv": (TrainingActivities.cross_validate, timedelta(hours=4), timedelta(seconds=20)),
    # fit heartbeats every second from a side thread; a dead worker is noticed after the heartbeat timeout. The
    # worker stops a fit at 2 x TRAINEASY_MAX_FIT_MINUTES (2 h by default) and fails it for good; this timeout is
    # only a backstop above that wall (a timeout would be retried), so it must stay longer than the default wall.
    "fit": (TrainingActivities.fit_model, timedelta(hours=3), timedelta(seconds=20)),
    # evaluate heartbeats too: permutation importance can take a while, and a cancel must stop it
    "evaluate": (TrainingActivities.evaluate_model, timedelta(minutes=10), timedelta(seconds=20)),
    "save": (TrainingActivities.register_model, timedelta(minutes=10), None),
}
assert tuple(_STAGE_ACTIVITIES) == STAGES


def activity_name(fn: Callable[..., Any]) -> str:
    """The name an activity is registered (and scheduled, and recorded in histories) under: the method's
    own name unless its `@activity.defn(name=...)` says otherwise (register_model is "save_model")."""
    name = activity._Definition.must_from_callable(fn).name
    assert name is not None, "a dynamic activity has no name"
    return name


STAGE_OF_ACTIVITY = {activity_name(fn): stage for stage, (fn, _, _) in _STAGE_ACTIVITIES.items()}  # registered name -> stage

# Runs started from this version hear a cancel that comes while their model is being registered: the save stage
# is waited for, and the version it registered is deleted again, so a run that says "cancelled" (a batch's
# child too) leaves no model behind. Before it, save was let go on a cancel and registered its model after.
SAVE_HONOURS_CANCEL = "save-honours-cancel"
DISCARD_TIMEOUT = timedelta(minutes=2)
# Runs started from this version delete their scratch files (split, checkpoints, model file) when they fail or
# are cancelled, keeping the evaluation the run page reads (orchestration.scratch). Before it they stayed.
DISCARD_SCRATCH = "discard-scratch"
SCRATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
# Runs started from this version give the short stages (load, preprocess, save) a heartbeat timeout too, and
# those stages heartbeat while they run. A completion the worker could not report because the Temporal server
# was down is then retried after SHORT_STAGE_HEARTBEAT, not after the stage's 10-minute limit (found by
# `make chaos`: a run stranded until then). Their cancellation type stays as it was.
SHORT_STAGE_HEARTBEATS = "short-stage-heartbeats"
SHORT_STAGE_HEARTBEAT = timedelta(seconds=20)
# Runs started from this version keep their stages on the worker that ran the first one (Temporal's worker-specific
# task queue pattern): each stage's result names that worker's own queue (StageResult.worker_queue), and the next
# stage goes there (its retries too), to find the run's data and model still in that worker's memory
# (workers/training_slot.py, orchestration/stage_cache.py). If that worker does not take it within STICKY_START
# (killed, restarted, stopped, or its slot taken) or refuses it as busy (WORKER_BUSY), the stage goes to the
# shared queue with the attempts left, and what is stored (the Parquet, split.npz, checkpoints, model.skops)
# carries the run on; the worker that runs it there is the one the next stage goes to. Before it, every stage
# went to the shared queue.
STICKY_STAGES = "sticky-stages"
STICKY_START = timedelta(seconds=5)  # a live worker takes its run's next stage in milliseconds


@workflow.defn
class TrainingWorkflow:
    def __init__(self) -> None:
        self._progress: RunProgress | None = None
        self._sticky = False  # STICKY_STAGES
        self._worker_queue: str | None = None  # the own queue of the worker that ran the run's last stage

    @workflow.run
    async def run(self, inp: TrainInput) -> RunProgress:
        req = inp.request
        self._progress = progress = RunProgress(
            run_id=inp.run_id,
            model=req.model,
            dataset_id=req.dataset_id,
            target=req.target,
            stages=[StageProgress(name) for name in STAGES],
        )
        try:
            await self._run_stages(inp)
        except (Exception, asyncio.CancelledError):  # failed or cancelled (not GeneratorExit: the worker evicted it)
            if workflow.patched(DISCARD_SCRATCH):
                await self._discard_scratch(inp)
            raise
        progress.stage = "done"
        return progress

    async def _run_stages(self, inp: TrainInput) -> None:
        assert self._progress is not None
        progress, req = self._progress, inp.request
        self._sticky = workflow.patched(STICKY_STAGES)
        for stage in progress.stages:
            if stage.name == "cv" and not req.cv_folds:
                stage.status = "skipped"
                continue
            try:
                await self._run_stage(stage, inp, honour_cancel=stage.name == "save" and workflow.patched(SAVE_HONOURS_CANCEL))
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                progress.error = failure_message(err)
                # the progress travels with the failure, so a failed run can be shown without a worker
                raise ApplicationError(progress.error, progress, type="TrainingFailed", non_retryable=True) from err

    @staticmethod
    async def _discard_scratch(inp: TrainInput) -> None:
        """Delete a failed or cancelled run's scratch files, on the I/O queue (never behind a fit). Best effort:
        if it fails too (the storage itself is the problem), the run ends as it would have, and the sweep at
        the next worker start deletes them."""
        try:
            await workflow.execute_activity_method(
                TrainingActivities.discard_scratch,
                inp,
                task_queue=io_queue(workflow.info().task_queue),
                start_to_close_timeout=DISCARD_TIMEOUT,
                schedule_to_close_timeout=DISCARD_TIMEOUT,  # never holds the run open for long: the sweep is there
                retry_policy=SCRATCH_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("could not delete the scratch files of run %s", inp.run_id)

    async def _run_stage(self, stage: StageProgress, inp: TrainInput, honour_cancel: bool = False) -> None:
        """Run one stage's activity and record its end. `honour_cancel` (the save stage, SAVE_HONOURS_CANCEL):
        a cancel asked for before or during it wins over its result; what it registered is deleted again."""
        activity_fn, timeout, heartbeat = _STAGE_ACTIVITIES[stage.name]
        waits_for_cancel = heartbeat is not None or honour_cancel
        if heartbeat is None and workflow.patched(SHORT_STAGE_HEARTBEATS):
            heartbeat = SHORT_STAGE_HEARTBEAT
        assert self._progress is not None
        if honour_cancel and workflow.cancellation_reason() is not None:
            stage.status = "cancelled"  # heard between stages (the last result swallowed it): do not start saving
            raise asyncio.CancelledError("cancelled before the model was saved")
        self._progress.stage = stage.name
        stage.status, stage.started_at = "running", workflow.now().isoformat()
        started = workflow.now()
        try:
            result = await self._execute(
                activity_fn,
                inp,
                timeout,
                heartbeat,
                # A heartbeating stage (cv, fit, evaluate) hears the cancel and stops: wait for it, so "cancelled" means
                # stopped. A short stage without heartbeats would never hear it and its result would swallow
                # the cancel; it is idempotent, so let the workflow move on at once. Except save (honour_cancel):
                # it registers a model, so it is waited for and undone below.
                workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                if waits_for_cancel
                else workflow.ActivityCancellationType.TRY_CANCEL,
            )
        except GeneratorExit:
            raise  # the worker dropped this workflow from its cache (it stopped): no workflow calls now
        except BaseException as err:
            stage.seconds = (workflow.now() - started).total_seconds()
            stage.status = "cancelled" if is_cancelled_exception(err) else "failed"
            if isinstance(err, ActivityError) and err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
                # the true count: every attempt ran (a refusal's attempt is read from the history, run_reader)
                stage.attempt = RETRY.maximum_attempts
            if honour_cancel and isinstance(err, ActivityError) and is_cancelled_exception(err):
                await self._discard_model(inp)  # an attempt may have registered before the cancel ended the stage
            raise
        stage.seconds = (workflow.now() - started).total_seconds()
        if honour_cancel and workflow.cancellation_reason() is not None:
            # the cancel came while the model was being registered: the run says "cancelled", so no model stays
            stage.status, stage.attempt = "cancelled", result.attempt
            await self._discard_model(inp)
            raise asyncio.CancelledError("cancelled while the model was being saved")
        stage.status, stage.attempt = "done", result.attempt
        facts = result.facts
        if facts.metrics:
            self._progress.metrics.update(facts.metrics)
            facts.metrics = None
        self._progress.facts.merge(facts)

    async def _execute(
        self,
        activity_fn: Any,
        inp: TrainInput,
        timeout: timedelta,
        heartbeat: timedelta | None,
        cancellation: workflow.ActivityCancellationType,
    ) -> StageResult:
        """The stage's activity: on the own queue of the worker that ran the run's last stage (STICKY_STAGES),
        and on the shared queue if that worker does not take it (or the run is from before)."""
        ran_there = 0  # attempts that ran on that worker before the stage moved (at least: see _attempts_if_it_moves)
        if self._sticky and self._worker_queue is not None:
            try:
                result: StageResult = await workflow.execute_activity_method(
                    activity_fn,
                    inp,
                    task_queue=self._worker_queue,
                    schedule_to_start_timeout=STICKY_START,
                    start_to_close_timeout=timeout,
                    heartbeat_timeout=heartbeat,
                    retry_policy=RETRY,
                    cancellation_type=cancellation,
                )
                return result
            except ActivityError as err:
                moved = _attempts_if_it_moves(err)
                if moved is None:
                    raise
                ran_there = moved
                workflow.logger.info("run %s: a stage moves off worker queue %s (%s)", inp.run_id, self._worker_queue, err.cause)
        result = await workflow.execute_activity_method(
            activity_fn,
            inp,
            start_to_close_timeout=timeout,
            heartbeat_timeout=heartbeat,
            retry_policy=replace(RETRY, maximum_attempts=RETRY.maximum_attempts - ran_there) if ran_there else RETRY,
            cancellation_type=cancellation,
        )
        result.attempt += ran_there
        if self._sticky:
            self._worker_queue = result.worker_queue  # the run's stages follow the worker that ran this one
        return result

    @staticmethod
    async def _discard_model(inp: TrainInput) -> None:
        """Delete the version this run registered, if any (idempotent)."""
        await workflow.execute_activity_method(
            TrainingActivities.discard_model, inp, start_to_close_timeout=DISCARD_TIMEOUT, retry_policy=RETRY
        )

    @workflow.query
    def progress(self) -> RunProgress | None:
        return self._progress


def _attempts_if_it_moves(err: ActivityError) -> int | None:
    """A stage sent to its run's worker failed: None if that failure stands (cancelled, failed for good, or a cancel
    asked for meanwhile); else it goes to the shared queue, and this is how many of its attempts ran on that worker:
    a worker that never took an attempt (gone, or its slot taken) says 0 or, for a retry, 1 (the timeout's cause is
    the failure of the attempt before it: at least one ran, most often exactly one); a busy worker says how many."""
    if is_cancelled_exception(err) or workflow.cancellation_reason() is not None:
        return None
    cause = err.cause
    if isinstance(cause, ActivityTimeout) and cause.type == TimeoutType.SCHEDULE_TO_START:
        return 0 if cause.cause is None else 1
    if isinstance(cause, ApplicationError) and cause.type == WORKER_BUSY:
        ran = cause.details[0] if cause.details else 0
        return min(ran, RETRY.maximum_attempts - 1) if isinstance(ran, int) else 0
    return None
