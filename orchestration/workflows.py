"""Workflows: deterministic glue only. No I/O, no pandas/sklearn; activity handles come through pass-through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, RetryState, is_cancelled_exception
from temporalio.types import MethodSyncSingleParam

with workflow.unsafe.imports_passed_through():
    # the module that defines the data check's report (re-exported by contracts) must be in the sandbox
    # too: decoding a result resolves its dataclass's annotations in its own module
    import ml.check_report  # noqa: F401
    from core.names import format_run_id
    from orchestration.activity_errors import INVALID_INPUT, plain_failure
    from orchestration.contracts import (
        PRIMARY_METRIC,
        STAGES,
        BatchInput,
        BatchProgress,
        CheckReport,
        CheckRequest,
        ChildState,
        IngestRequest,
        IngestResult,
        PredictRequest,
        PredictResult,
        RunProgress,
        StageProgress,
        TagRequest,
        TrainInput,
        TrainRequest,
        io_queue,
        run_attributes,
    )
    from orchestration.data_activities import DataActivities
    from orchestration.training_activities import TrainingActivities

# One retry layer: Temporal's, with exponential backoff. Bad input is refused at once.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[INVALID_INPUT],
)

# stage -> (activity, start-to-close timeout, heartbeat timeout)
_STAGE_ACTIVITIES: dict[str, tuple[Any, timedelta, timedelta | None]] = {
    "load": (TrainingActivities.load_and_validate, timedelta(minutes=10), None),
    "preprocess": (TrainingActivities.preprocess_split, timedelta(minutes=10), None),
    "cv": (TrainingActivities.cross_validate, timedelta(hours=4), timedelta(seconds=20)),
    # fit heartbeats every increment; a dead worker is noticed after the heartbeat timeout. The worker stops a
    # fit at 2 x TRAINEASY_MAX_FIT_MINUTES (2 h by default) and fails it for good; this timeout is only a
    # backstop above that wall (a timeout would be retried), so it must stay longer than the default wall.
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


def failure_message(err: BaseException) -> str:
    """What the activity itself said (the innermost message of a failure chain), in plain words: no class
    name in front, a timeout or a cancel told as such (orchestration.activity_errors.plain_failure)."""
    return plain_failure(err)


@workflow.defn
class TrainingWorkflow:
    def __init__(self) -> None:
        self._progress: RunProgress | None = None

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
        progress.stage = "done"
        return progress

    async def _run_stage(self, stage: StageProgress, inp: TrainInput, honour_cancel: bool = False) -> None:
        """Run one stage's activity and record its end. `honour_cancel` (the save stage, SAVE_HONOURS_CANCEL):
        a cancel asked for before or during it wins over its result; what it registered is deleted again."""
        activity_fn, timeout, heartbeat = _STAGE_ACTIVITIES[stage.name]
        assert self._progress is not None
        if honour_cancel and workflow.cancellation_reason() is not None:
            stage.status = "cancelled"  # heard between stages (the last result swallowed it): do not start saving
            raise asyncio.CancelledError("cancelled before the model was saved")
        self._progress.stage = stage.name
        stage.status, stage.started_at = "running", workflow.now().isoformat()
        started = workflow.now()
        try:
            result = await workflow.execute_activity_method(
                activity_fn,
                inp,
                start_to_close_timeout=timeout,
                heartbeat_timeout=heartbeat,
                retry_policy=RETRY,
                # A heartbeating stage (cv, fit, evaluate) hears the cancel and stops: wait for it, so "cancelled" means
                # stopped. A short stage without heartbeats would never hear it and its result would swallow
                # the cancel; it is idempotent, so let the workflow move on at once. Except save (honour_cancel):
                # it registers a model, so it is waited for and undone below.
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                if heartbeat or honour_cancel
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

    @staticmethod
    async def _discard_model(inp: TrainInput) -> None:
        """Delete the version this run registered, if any (idempotent)."""
        await workflow.execute_activity_method(
            TrainingActivities.discard_model, inp, start_to_close_timeout=DISCARD_TIMEOUT, retry_policy=RETRY
        )

    @workflow.query
    def progress(self) -> RunProgress | None:
        return self._progress


DATA_TASK_TIMEOUT = timedelta(minutes=10)


Req = TypeVar("Req")
Res = TypeVar("Res")


async def _data_task(activity_fn: MethodSyncSingleParam[Any, Req, Res], req: Req) -> Res:
    """One data activity (the workflow's whole job), with the data tasks' timeout and retries."""
    return await workflow.execute_activity_method(activity_fn, req, start_to_close_timeout=DATA_TASK_TIMEOUT, retry_policy=RETRY)


@workflow.defn
class IngestWorkflow:
    """Validate, convert and profile an uploaded CSV (the bytes stay on disk)."""

    @workflow.run
    async def run(self, req: IngestRequest) -> IngestResult:
        return await _data_task(DataActivities.ingest_dataset, req)


@workflow.defn
class CheckDataWorkflow:
    """The data check of a dataset and target for one model, before a launch."""

    @workflow.run
    async def run(self, req: CheckRequest) -> CheckReport:
        return await _data_task(DataActivities.check_dataset, req)


@workflow.defn
class PredictWorkflow:
    """Predictions of a registered model for an uploaded CSV, written to the owner's folder."""

    @workflow.run
    async def run(self, req: PredictRequest) -> PredictResult:
        return await _data_task(DataActivities.predict, req)


# Batches started from this version tag their best finished child when cancelled, as a stop does: its model
# stays, starred in the leaderboard, so it must carry the tag that keeps retention from deleting it.
BEST_TAGGED_ON_CANCEL = "batch-best-tagged-on-cancel"
AWAIT_DECISION = timedelta(days=1)  # how long a batch with failures waits for "retry failed" or "finish"
# Batches started from this version wait for every child to record its end before the batch closes: before
# it, a cancelled batch closed at the first child that heard the cancel, its other children still "running".
CHILDREN_SETTLE = "batch-children-settle"


@workflow.defn
class BatchTrainingWorkflow:
    """One child TrainingWorkflow per configuration, at most `max_parallel` at once.

    A failing child does not fail the batch. When some failed, the batch waits for the user: the
    `retry_failed` signal re-runs only those (optionally with edited parameters), `finish` closes it.
    The `stop` signal cancels running children and keeps the finished ones; cancelling the batch
    cancels every child.
    """

    def __init__(self) -> None:
        self._progress: BatchProgress | None = None
        self._stop = False
        self._finish = False
        self._retry: dict[str, dict[str, Any]] | None = None
        self._running: dict[int, asyncio.Task] = {}

    @workflow.run
    async def run(self, inp: BatchInput) -> BatchProgress:
        req = inp.request
        self._progress = progress = BatchProgress(
            batch_id=inp.batch_id,
            dataset_id=req.dataset_id,
            target=req.target,
            task=req.task,
            primary_metric=PRIMARY_METRIC[req.task],
            max_parallel=req.max_parallel,
            sweep=req.sweep,
            children=[ChildState(i, item.model, dict(item.params)) for i, item in enumerate(req.items)],
        )
        settle = workflow.patched(CHILDREN_SETTLE)
        try:
            await self._run_children(inp, settle)
        except BaseException as err:
            if is_cancelled_exception(err):
                # final, true states: a configuration that never started never will
                for c in progress.children:
                    if c.status == "pending":
                        c.status = "cancelled"
                progress.phase = "cancelled"
                if workflow.patched(BEST_TAGGED_ON_CANCEL):
                    # what finished stays, as after a stop: the best of it is tagged, so retention keeps it
                    self._rank()
                    try:
                        await self._tag_best(inp)
                    except ActivityError:  # the batch still ends cancelled, as asked; the tag is not worth a failure
                        workflow.logger.warning("could not tag the best model of cancelled batch %s", inp.batch_id)
            raise
        progress.phase = "done"
        return progress

    async def _run_children(self, inp: BatchInput, settle: bool) -> None:
        req, progress = inp.request, self._progress
        assert progress is not None
        slots = asyncio.Semaphore(req.max_parallel)
        while True:
            todo = [c for c in progress.children if c.status == "pending"]
            tasks = [asyncio.create_task(self._child(inp, c, slots)) for c in todo]
            self._running = {c.index: t for c, t in zip(todo, tasks)}
            if settle:
                # A cancel of the batch reaches every child task; wait until each has recorded its end (the
                # gather then raises the cancel), instead of closing at the first one that hears it.
                ended = await asyncio.gather(*tasks, return_exceptions=True)
                failed = next((e for e in ended if isinstance(e, BaseException)), None)
                if failed is not None:
                    raise failed
            else:
                await asyncio.gather(*tasks)
            self._rank()
            if self._stop or not any(c.status == "failed" for c in progress.children):
                break
            progress.phase = "awaiting"
            try:
                await workflow.wait_condition(
                    lambda: self._retry is not None or self._finish or self._stop, timeout=AWAIT_DECISION
                )
            except TimeoutError:
                break
            if self._retry is None:
                break
            for c in progress.children:
                if c.status == "failed":
                    c.status, c.error = "pending", None
                    c.params = dict(self._retry.get(str(c.index), c.params))
            self._retry, progress.phase = None, "running"
        await self._tag_best(inp)

    async def _tag_best(self, inp: BatchInput) -> None:
        """Tag the best finished child's model "best of <batch>" (nothing when none finished)."""
        progress = self._progress
        assert progress is not None
        if progress.best_run_id:
            await workflow.execute_activity_method(
                DataActivities.tag_model,
                TagRequest(inp.request.owner, progress.best_run_id, f"best of {inp.batch_id}"),
                task_queue=io_queue(workflow.info().task_queue),
                start_to_close_timeout=DATA_TASK_TIMEOUT,
                retry_policy=RETRY,
            )
            progress.best_tagged = True

    async def _child(self, inp: BatchInput, child: ChildState, slots: asyncio.Semaphore) -> None:
        try:
            async with slots:
                if not self._stop:
                    await self._run_child(inp, child)
                else:
                    child.status = "cancelled"
        except asyncio.CancelledError:
            child.status = "cancelled"
            if not self._stop:
                raise  # the whole batch is being cancelled, not stopped

    async def _run_child(self, inp: BatchInput, child: ChildState) -> None:
        req = inp.request
        run_id = format_run_id("train", req.owner, workflow.uuid4().hex)
        child.run_id, child.status, child.attempts = run_id, "running", child.attempts + 1
        started = workflow.now()
        try:
            result = await workflow.execute_child_workflow(
                TrainingWorkflow.run,
                TrainInput(
                    run_id,
                    TrainRequest(
                        req.owner, req.dataset_id, req.target, child.model, child.params, req.seed, req.test_size, req.cv_folds
                    ),
                ),
                id=run_id,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                # children do not inherit search attributes: the run list and ownership checks need them
                search_attributes=run_attributes(req.owner, "train", req.dataset_id, child.model),
            )
            child.status, child.metrics = "completed", dict(result.metrics)
            child.worker, child.curve = result.facts.worker, dict(result.facts.curve or {})
        except ChildWorkflowError as err:
            if is_cancelled_exception(err):
                child.status = "cancelled"
            else:
                child.status, child.error = "failed", failure_message(err)
        except GeneratorExit:
            raise  # the worker dropped this workflow from its cache (it closed): no workflow calls now
        except BaseException:
            self._ended(child, started)
            raise
        self._ended(child, started)

    def _ended(self, child: ChildState, started: datetime) -> None:
        child.seconds = (workflow.now() - started).total_seconds()
        self._rank()

    def _rank(self) -> None:
        progress = self._progress
        assert progress is not None
        scored = [c for c in progress.children if c.status == "completed" and progress.primary_metric in c.metrics]
        best = max(scored, key=lambda c: c.metrics[progress.primary_metric], default=None)
        progress.best_run_id = best.run_id if best else None

    @workflow.query
    def progress(self) -> BatchProgress | None:
        return self._progress

    @workflow.signal
    def stop(self) -> None:
        """Stop gracefully: cancel running children, start no more, keep what finished."""
        self._stop = True
        if self._progress is not None:
            self._progress.phase = "stopping"
        for task in self._running.values():
            if not task.done():
                task.cancel()

    @workflow.signal
    def retry_failed(self, edits: dict[str, dict[str, Any]]) -> None:
        """Re-run the failed children; `edits` maps a child's index (as text) to new parameters."""
        self._retry = edits

    @workflow.signal
    def finish(self) -> None:
        self._finish = True
