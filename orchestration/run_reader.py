"""Reading a workflow's state from Temporal (result, failure details, progress query, describe) for the views."""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowExecutionDescription, WorkflowFailureError, WorkflowHandle
from temporalio.converter import DataConverter, value_to_type
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from orchestration.codec import PayloadDecodeError
from orchestration.contracts import BatchProgress, RunProgress
from orchestration.views import PendingActivity
from orchestration.workflows import BatchTrainingWorkflow, TrainingWorkflow

QUERY_TIMEOUT = timedelta(seconds=3)


async def run_progress(handle: WorkflowHandle, status: str) -> tuple[RunProgress | None, bool]:
    """(the run's progress, whether the query failed): from the result once it has finished, else from the
    `progress` query, which needs a live worker (None then, with the second value True)."""
    progress: RunProgress | None = None
    if status == "completed":
        progress = await handle.result()
    elif status == "failed":
        progress = await _failed_progress(handle)
    if progress is None:
        try:
            progress = await handle.query(TrainingWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
        except RPCError:
            return None, True
    return progress, False


async def batch_progress(handle: WorkflowHandle, status: str) -> BatchProgress | None:
    """The batch's progress: its result once completed, else the `progress` query (None without a worker)."""
    if status == "completed":
        return await handle.result()
    try:
        return await handle.query(BatchTrainingWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
    except RPCError:
        return None


async def pending_activities(converter: DataConverter, desc: WorkflowExecutionDescription) -> list[PendingActivity]:
    """The activities in flight, with their last failure and heartbeat details decoded."""
    found = []
    for pending in desc.raw_description.pending_activities:
        last_failure = live = None
        if pending.HasField("last_failure"):
            last_failure = await _failure_text(converter, pending.last_failure)
        if pending.HasField("heartbeat_details"):
            try:
                decoded = await converter.decode(pending.heartbeat_details.payloads)
            except PayloadDecodeError:
                decoded = []  # not ours to read (see orchestration/codec.py): show no live details
            live = decoded[-1] if decoded and isinstance(decoded[-1], dict) else {}
        scheduled = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
        found.append(PendingActivity(pending.attempt, scheduled, last_failure, live))
    return found


async def _failure_text(converter: DataConverter, failure: Failure) -> str | None:
    """The message of a raw failure proto. With encoded failure attributes the proto's own message is a
    placeholder ("Encoded failure"): the real one is in the encrypted attributes, so decode a copy."""
    copy = Failure()
    copy.CopyFrom(failure)
    try:
        err = await converter.decode_failure(copy)
    except PayloadDecodeError:
        return "An error this process cannot decrypt (it was encrypted with a key it does not have)."
    return getattr(err, "message", None) or str(err) or None  # FailureError.message: without the type prefix


async def _failed_progress(handle: WorkflowHandle) -> RunProgress | None:
    """A failed run carries its progress in the failure details (see TrainingWorkflow)."""
    try:
        await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.details:
            return value_to_type(RunProgress, cause.details[0])
    return None
