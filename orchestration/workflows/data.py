"""The data workflows (ingest, data check, predict): each one data activity on the I/O queue's worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.types import MethodSyncSingleParam

from orchestration.workflows.policy import RETRY

with workflow.unsafe.imports_passed_through():
    # the module that defines the data check's report (re-exported by contracts) must be in the sandbox
    # too: decoding a result resolves its dataclass's annotations in its own module
    import ml.check_report  # noqa: F401
    from orchestration.contracts import (
        CheckReport,
        CheckRequest,
        IngestRequest,
        IngestResult,
        PredictRequest,
        PredictResult,
    )
    from orchestration.data_activities import DataActivities

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
