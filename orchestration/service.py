"""The service facade used by pages and the API: validate, authorise, then start/query/cancel workflows.

Every call takes the acting user and enforces ownership itself; another user's run is "not found".
"""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.converter import value_to_type
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core.accounts import User
from core.config import Settings
from core.datasets import DatasetInfo, list_datasets, load_info
from core.names import InvalidName, new_run_id, parse_run_id
from core.storage import Storage, write_atomic
from ml.catalog import ParamError, get_model
from orchestration.contracts import (
    DATASET, MODEL, OWNER, RUN_KIND, STAGE_WEIGHTS, STAGES, IngestRequest, RunProgress, StageProgress, TrainInput,
    TrainRequest, io_queue,
)
from orchestration.workflows import IngestWorkflow, TrainingWorkflow, failure_message

QUERY_TIMEOUT = timedelta(seconds=3)
INGEST_TIMEOUT = timedelta(minutes=10)


class UserError(Exception):
    """Something the user asked for cannot be done; the message says why and is safe to show."""


class NotFound(UserError):
    pass


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
    status: str                       # running | completed | failed | cancelled | terminated | timed_out
    model: str
    dataset_id: str
    target: str
    started_at: datetime | None
    duration_s: float | None
    stage: str
    percent: float
    stages: list[StageProgress] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    waiting_for_worker: bool = False
    live: dict[str, Any] = field(default_factory=dict)   # heartbeat details of the running activity
    attempt: int = 1
    last_failure: str | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"


def _status(s: WorkflowExecutionStatus | None) -> str:
    names = {WorkflowExecutionStatus.CANCELED: "cancelled", WorkflowExecutionStatus.CONTINUED_AS_NEW: "running"}
    return names.get(s, s.name.lower()) if s else "unknown"


def _percent(stages: list[StageProgress], live: dict[str, Any]) -> float:
    done = sum(STAGE_WEIGHTS[s.name] for s in stages if s.status == "done")
    running = next((s for s in stages if s.status == "running"), None)
    if running is not None and live.get("of"):
        done += STAGE_WEIGHTS[running.name] * min(1.0, live["step"] / live["of"])
    return round(100.0 * done / sum(STAGE_WEIGHTS.values()), 1)


class TrainEasyService:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.storage = Storage(settings.home)

    # --- datasets ------------------------------------------------------------------------------
    def list_datasets(self, user: User) -> list[DatasetInfo]:
        return list_datasets(self.storage, user.name)

    def get_dataset(self, user: User, dataset_id: str) -> DatasetInfo:
        info = load_info(self.storage, user.name, dataset_id)
        if info is None:
            raise NotFound("No such dataset.")
        return info

    async def upload_dataset(self, user: User, filename: str, data: bytes) -> dict:
        """Stage the bytes in the owner's folder; a worker validates, converts and profiles them."""
        limit = self.settings.max_upload_bytes
        if len(data) > limit:
            raise UserError(f"The file is {len(data) / 2**20:.1f} MB; the limit is {self.settings.max_upload_mb} MB.")
        run_id = new_run_id("ingest", user.name)
        staged = self.storage.upload_dir(user.name) / f"{secrets.token_hex(16)}.csv"
        write_atomic(staged, data)
        try:
            return await self.client.execute_workflow(
                IngestWorkflow.run, IngestRequest(user.name, staged.name, filename, limit), id=run_id,
                task_queue=io_queue(self.settings.task_queue), execution_timeout=INGEST_TIMEOUT,
                search_attributes=TypedSearchAttributes([SearchAttributePair(OWNER, user.name),
                                                         SearchAttributePair(RUN_KIND, "ingest")]),
            )
        except WorkflowFailureError as err:
            raise UserError(failure_message(err)) from None
        finally:
            staged.unlink(missing_ok=True)

    # --- training runs -------------------------------------------------------------------------
    async def start_training(self, user: User, request: TrainRequest) -> str:
        request.owner = user.name  # the acting user owns the run, whatever the request said
        dataset = self.get_dataset(user, request.dataset_id)
        if request.target not in dataset.column_names:
            raise UserError(f"The target column {request.target!r} is not in {dataset.name}.")
        try:
            spec = get_model(request.model)
            request.params = spec.validate(request.params)
        except ParamError as exc:
            raise UserError(str(exc)) from None
        if not 0.05 <= request.test_size <= 0.5:
            raise UserError("The test split must be between 5% and 50% of the rows.")
        if isinstance(request.seed, bool) or not isinstance(request.seed, int) or not 0 <= request.seed < 2**31:
            raise UserError("The seed must be a whole number between 0 and 2147483647.")
        run_id = new_run_id("train", user.name)
        await self.client.start_workflow(
            TrainingWorkflow.run, TrainInput(run_id, request), id=run_id, task_queue=self.settings.task_queue,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(OWNER, user.name), SearchAttributePair(RUN_KIND, "train"),
                SearchAttributePair(MODEL, request.model), SearchAttributePair(DATASET, request.dataset_id),
            ]),
        )
        return run_id

    async def list_runs(self, user: User, limit: int = 200) -> list[RunSummary]:
        query = f"Owner = '{user.name}' AND RunKind = 'train'"   # user.name matched USERNAME_RE at login
        runs = []
        async for wf in self.client.list_workflows(query, limit=limit):
            attrs = wf.typed_search_attributes
            end = wf.close_time or datetime.now(timezone.utc)
            runs.append(RunSummary(
                run_id=wf.id, status=_status(wf.status), model=attrs.get(MODEL) or "",
                dataset_id=attrs.get(DATASET) or "", started_at=wf.start_time,
                duration_s=(end - wf.start_time).total_seconds() if wf.start_time else None,
            ))
        return sorted(runs, key=lambda r: r.started_at or datetime.min.replace(tzinfo=timezone.utc), reverse=True)

    async def _owned_handle(self, user: User, run_id: str):
        try:
            kind, owner = parse_run_id(run_id)
        except InvalidName:
            raise NotFound("No such run.") from None
        if owner != user.name or kind != "train":
            raise NotFound("No such run.")
        handle = self.client.get_workflow_handle_for(TrainingWorkflow.run, run_id)
        try:
            desc = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NotFound("No such run.") from None
            raise
        if desc.typed_search_attributes.get(OWNER) != user.name:
            raise NotFound("No such run.")
        return handle, desc

    async def get_run(self, user: User, run_id: str) -> RunView:
        handle, desc = await self._owned_handle(user, run_id)
        attrs = desc.typed_search_attributes
        status = _status(desc.status)
        progress: RunProgress | None = None
        waiting = False
        live: dict[str, Any] = {}
        attempt, last_failure = 1, None
        if status == "completed":
            progress = await handle.result()
        elif status == "failed":
            progress = await _failed_progress(handle)
        if progress is None:
            try:
                progress = await handle.query(TrainingWorkflow.progress, rpc_timeout=QUERY_TIMEOUT,
                                              result_type=RunProgress)
            except RPCError:
                waiting = status == "running"   # queries need a live worker; say so instead of hanging
        for pending in desc.raw_description.pending_activities:
            attempt = pending.attempt
            if pending.HasField("last_failure") and pending.last_failure.message:
                last_failure = pending.last_failure.message
            if pending.HasField("heartbeat_details"):
                decoded = await self.client.data_converter.decode(pending.heartbeat_details.payloads)
                live = decoded[-1] if decoded and isinstance(decoded[-1], dict) else {}
            if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED and pending.attempt == 1:
                waiting = waiting or progress is None
        if progress is None:
            progress = RunProgress(run_id, attrs.get(MODEL) or "", attrs.get(DATASET) or "", "",
                                   stage="load", stages=[StageProgress(s) for s in STAGES])
        end = desc.close_time or datetime.now(timezone.utc)
        return RunView(
            run_id=run_id, status=status, model=progress.model, dataset_id=progress.dataset_id,
            target=progress.target, started_at=desc.start_time,
            duration_s=(end - desc.start_time).total_seconds() if desc.start_time else None,
            stage=progress.stage, percent=100.0 if status == "completed" else _percent(progress.stages, live),
            stages=progress.stages, facts=progress.facts, metrics=progress.metrics, error=progress.error,
            waiting_for_worker=waiting, live=live, attempt=attempt, last_failure=last_failure,
        )

    async def cancel_run(self, user: User, run_id: str) -> None:
        handle, desc = await self._owned_handle(user, run_id)
        if _status(desc.status) != "running":
            raise UserError("This run has already finished.")
        await handle.cancel()

    async def health(self) -> dict[str, Any]:
        from orchestration.client import count_pollers

        try:
            workers = await asyncio.wait_for(count_pollers(self.client, self.settings.task_queue), 5)
            return {"temporal": True, "workers": workers}
        except (RPCError, asyncio.TimeoutError) as err:
            return {"temporal": False, "workers": 0, "error": str(err)}


async def _failed_progress(handle) -> RunProgress | None:
    """A failed run carries its progress in the failure details (see TrainingWorkflow)."""
    try:
        await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.details:
            return value_to_type(RunProgress, cause.details[0])
    return None
