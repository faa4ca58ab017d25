"""Workflows: deterministic glue only. No I/O, no pandas/sklearn; activity handles come through pass-through."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import INVALID_INPUT, DataActivities, TrainingActivities
    from orchestration.contracts import (
        STAGES, CheckRequest, IngestRequest, PredictRequest, RunProgress, StageProgress, TrainInput,
    )

# One retry layer: Temporal's, with exponential backoff. Bad input is refused at once.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30),
    maximum_attempts=5, non_retryable_error_types=[INVALID_INPUT],
)

# stage -> (activity, start-to-close timeout, heartbeat timeout)
_STEPS: dict[str, tuple[Any, timedelta, timedelta | None]] = {
    "load": (TrainingActivities.load_and_validate, timedelta(minutes=10), None),
    "preprocess": (TrainingActivities.preprocess_split, timedelta(minutes=10), None),
    "cv": (TrainingActivities.cross_validate, timedelta(hours=4), timedelta(seconds=20)),
    # fit heartbeats every increment; a dead worker is noticed after the heartbeat timeout
    "fit": (TrainingActivities.fit_model, timedelta(hours=2), timedelta(seconds=20)),
    "evaluate": (TrainingActivities.evaluate_model, timedelta(minutes=10), None),
    "save": (TrainingActivities.save_model, timedelta(minutes=10), None),
}
assert tuple(_STEPS) == STAGES


def failure_message(err: BaseException) -> str:
    """The innermost message of a failure chain: what the activity itself said."""
    while getattr(err, "cause", None) is not None:
        err = err.cause  # type: ignore[assignment]
    return str(err) or type(err).__name__


@workflow.defn
class TrainingWorkflow:
    def __init__(self) -> None:
        self._progress: RunProgress | None = None

    @workflow.run
    async def run(self, inp: TrainInput) -> RunProgress:
        req = inp.request
        self._progress = progress = RunProgress(
            run_id=inp.run_id, model=req.model, dataset_id=req.dataset_id, target=req.target,
            stages=[StageProgress(name) for name in STAGES],
        )
        for stage in progress.stages:
            if stage.name == "cv" and not req.cv_folds:
                stage.status = "skipped"
                continue
            try:
                await self._run_stage(stage, inp)
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                progress.error = failure_message(err)
                # the progress travels with the failure, so a failed run can be shown without a worker
                raise ApplicationError(progress.error, progress, type="TrainingFailed", non_retryable=True) from err
        progress.stage = "done"
        return progress

    async def _run_stage(self, stage: StageProgress, inp: TrainInput) -> None:
        activity_fn, timeout, heartbeat = _STEPS[stage.name]
        assert self._progress is not None
        self._progress.stage = stage.name
        stage.status, stage.started_at = "running", workflow.now().isoformat()
        started = workflow.now()
        try:
            result = await workflow.execute_activity_method(
                activity_fn, inp, start_to_close_timeout=timeout, heartbeat_timeout=heartbeat, retry_policy=RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except BaseException as err:
            stage.status = "cancelled" if is_cancelled_exception(err) else "failed"
            raise
        finally:
            stage.seconds = (workflow.now() - started).total_seconds()
        stage.status, stage.attempt = "done", result.attempt
        facts = dict(result.facts)
        self._progress.metrics.update(facts.pop("metrics", {}))
        self._progress.facts.update(facts)

    @workflow.query
    def progress(self) -> RunProgress | None:
        return self._progress


DATA_TASK_TIMEOUT = timedelta(minutes=10)


@workflow.defn
class IngestWorkflow:
    """Validate, convert and profile an uploaded CSV (the bytes stay on disk)."""

    @workflow.run
    async def run(self, req: IngestRequest) -> dict:
        return await workflow.execute_activity_method(
            DataActivities.ingest_dataset, req, start_to_close_timeout=DATA_TASK_TIMEOUT, retry_policy=RETRY)


@workflow.defn
class CheckDataWorkflow:
    """The pre-launch check of a dataset and target for one model."""

    @workflow.run
    async def run(self, req: CheckRequest) -> dict:
        return await workflow.execute_activity_method(
            DataActivities.check_dataset, req, start_to_close_timeout=DATA_TASK_TIMEOUT, retry_policy=RETRY)


@workflow.defn
class PredictWorkflow:
    """Predictions of a registered model for an uploaded CSV, written to the owner's folder."""

    @workflow.run
    async def run(self, req: PredictRequest) -> dict:
        return await workflow.execute_activity_method(
            DataActivities.predict, req, start_to_close_timeout=DATA_TASK_TIMEOUT, retry_policy=RETRY)
