"""Reading a workflow's state from Temporal (result, failure details, progress query, describe) for the views."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowExecutionDescription, WorkflowFailureError, WorkflowHandle
from temporalio.converter import DataConverter, value_to_type
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from orchestration.codec import PayloadDecodeError
from orchestration.contracts import DATASET, MODEL, BatchProgress, RunProgress, StageHeartbeat, TrainInput
from orchestration.progress import PendingActivity, RunSeen
from orchestration.views import RunView, build_run_view, status_name
from orchestration.workflows import BatchTrainingWorkflow, TrainingWorkflow
from orchestration.workflows.training import STAGE_OF_ACTIVITY

QUERY_TIMEOUT = timedelta(seconds=3)  # a describe() of a run (quota and dataset calls)
# The `progress` query waits for a worker to answer it; with none, it waits its whole timeout. A page polls it
# every 2 s, so it gets 1 s, and the view falls back to what describe() says (a worker answers in milliseconds).
PROGRESS_QUERY_TIMEOUT = timedelta(seconds=1)
QUERY_BACKOFF = 6.0  # seconds before a run's unanswered progress query is asked again


async def read_run(
    converter: DataConverter, handle: WorkflowHandle, desc: WorkflowExecutionDescription, seen: RunSeen
) -> RunView:
    """The run view of an owned run: its progress, the activities in flight and, read once from its history,
    the request it was started with and (once closed short of completing) how many attempts each stage took.
    A progress query no worker answered is not asked again for QUERY_BACKOFF seconds: with the only worker
    hung, each poll (and each page load) would wait the query's whole timeout."""
    status = status_name(desc.status)
    now = time.monotonic()
    ask = seen.query_failed_at is None or now - seen.query_failed_at >= QUERY_BACKOFF
    progress, query_failed = await run_progress(handle, status, ask)
    if ask:
        seen.query_failed_at = now if query_failed else None
    # another run's progress is refused by build_run_view before anything of this one is read
    same_run = progress is None or progress.run_id == handle.id
    pending: list[PendingActivity] = []
    if same_run:
        pending = await pending_activities(converter, desc)
        await _read_history(converter, handle, seen, attempts=status not in ("running", "completed"))
        for stage in progress.stages if progress is not None else []:
            stage.attempt = max(stage.attempt, (seen.closed_attempts or {}).get(stage.name, 0))
    attrs = desc.typed_search_attributes
    return build_run_view(
        handle.id,
        status,
        progress,
        query_failed=query_failed,
        pending=pending,
        model=attrs.get(MODEL) or "",
        dataset_id=attrs.get(DATASET) or "",
        started_at=desc.start_time,
        closed_at=desc.close_time,
        now=datetime.now(UTC),
        seen=seen,
    )


async def _read_history(converter: DataConverter, handle: WorkflowHandle, seen: RunSeen, attempts: bool) -> None:
    """Fill in `seen` from the run's history, once: the request (its first event's input) and, with `attempts`,
    each stage's attempts: the attempt of its activity's last start. The workflow records a stage's attempt
    when it ends, but a refused or cancelled stage does not say how many times it ran."""
    if seen.request_read and (seen.closed_attempts is not None or not attempts):
        return
    found: dict[str, int] = {}
    scheduled: dict[int, str] = {}
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes") and not seen.request_read:
            seen.request_read = True
            try:
                decoded = await converter.decode(event.workflow_execution_started_event_attributes.input.payloads, [TrainInput])
                seen.request = decoded[0].request if decoded and isinstance(decoded[0], TrainInput) else None
            except (PayloadDecodeError, ValueError, TypeError):
                seen.request = None  # not ours to read: the page shows no parameters
            if not attempts:
                return
        elif event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            stage = STAGE_OF_ACTIVITY.get(scheduled.get(started.scheduled_event_id, ""))
            if stage is not None:
                found[stage] = started.attempt
    if attempts:
        seen.closed_attempts = found


async def run_progress(handle: WorkflowHandle, status: str, ask: bool = True) -> tuple[RunProgress | None, bool]:
    """(the run's progress, whether the query failed): from the result once it has finished, else from the
    `progress` query, which needs a live worker (None then, with the second value True; also without asking
    when `ask` is False)."""
    progress: RunProgress | None = None
    if status == "completed":
        progress = await handle.result()
    elif status == "failed":
        progress = await _failed_progress(handle)
    if progress is None and not ask:
        return None, True
    if progress is None:
        try:
            progress = await handle.query(TrainingWorkflow.progress, rpc_timeout=PROGRESS_QUERY_TIMEOUT)
        except RPCError:
            return None, True
    return progress, False


async def batch_progress(handle: WorkflowHandle, status: str) -> BatchProgress | None:
    """The batch's progress: its result once completed, else the `progress` query (None without a worker)."""
    if status == "completed":
        return await handle.result()
    try:
        return await handle.query(BatchTrainingWorkflow.progress, rpc_timeout=PROGRESS_QUERY_TIMEOUT)
    except RPCError:
        return None


async def pending_activities(converter: DataConverter, desc: WorkflowExecutionDescription) -> list[PendingActivity]:
    """The activities in flight, with their last failure and heartbeat details decoded."""
    found: list[PendingActivity] = []
    for pending in desc.raw_description.pending_activities:
        last_failure = live = None
        if pending.HasField("last_failure"):
            last_failure = await _failure_text(converter, pending.last_failure)
        if pending.HasField("heartbeat_details"):
            live = await _heartbeat(converter, pending.heartbeat_details.payloads)
        scheduled = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
        started = beat = None
        if not scheduled and pending.HasField("last_started_time"):
            started = pending.last_started_time.ToDatetime(tzinfo=UTC)
        if pending.HasField("last_heartbeat_time"):
            beat = pending.last_heartbeat_time.ToDatetime(tzinfo=UTC)
        stage = STAGE_OF_ACTIVITY.get(pending.activity_type.name)
        found.append(PendingActivity(pending.attempt, scheduled, last_failure, live, started, beat, stage))
    return found


async def _heartbeat(converter: DataConverter, payloads: Sequence[Payload]) -> StageHeartbeat:
    """The details of an activity's last heartbeat; empty when they are not ours to read (see
    orchestration/codec.py) or not a stage's heartbeat."""
    try:
        decoded = await converter.decode(payloads)
    except PayloadDecodeError:
        return StageHeartbeat()
    return stage_heartbeat(decoded[-1]) if decoded else StageHeartbeat()


def stage_heartbeat(value: object) -> StageHeartbeat:
    """A decoded heartbeat as a StageHeartbeat: a dict from before the type decodes the same (unknown keys are
    ignored). One that does not fit the type (text where a number goes: anyone who can start a workflow can
    heartbeat anything) is shown as no live details."""
    try:
        return value_to_type(StageHeartbeat, value)
    except (TypeError, ValueError):
        return StageHeartbeat()


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
