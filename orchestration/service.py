"""The service facade used by pages and the API: validate, authorise, then start/query/cancel workflows.

Every call takes the acting user and enforces ownership itself; another user's run is "not found".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.converter import value_to_type
from temporalio.service import RPCError, RPCStatusCode
from temporalio.types import MethodAsyncSingleParam

from core.accounts import User
from core.audit import AuditLog
from core.config import Settings
from core.datasets import DatasetInfo, list_datasets, load_info
from core.names import InvalidName, new_run_id, parse_run_id
from core.quotas import Quotas
from core.registry import Registry
from core.storage import Storage
from orchestration.auditing import audited
from orchestration.batch_calls import BatchCalls
from orchestration.check_cache import CheckCache
from orchestration.contracts import (
    OWNER,
    RunProgress,
    TrainInput,
    TrainRequest,
    run_attributes,
)
from orchestration.data_task_calls import DataTaskCalls
from orchestration.dataset_calls import DatasetCalls
from orchestration.errors import Conflict, Forbidden, InvalidInput, NotFound, UserError
from orchestration.evaluation_view import Evaluation
from orchestration.health import EngineInfo, HealthReport, check_health
from orchestration.known_views import KnownCalls, KnownViews
from orchestration.listing_calls import ListingCalls
from orchestration.metrics_calls import MetricsCalls
from orchestration.model_calls import ModelCalls
from orchestration.progress import RunWatch
from orchestration.retry_calls import RetryCalls
from orchestration.run_reader import read_run
from orchestration.validation import (
    check_data_bounds,
    check_split,
    check_target,
    target_values,
    usable_rows,
    validated_params,
)
from orchestration.views import RunSummary, RunView, build_run_summary, status_name, temporal_ui_url
from orchestration.workflows import TrainingWorkflow

Res = TypeVar("Res")
Wf = TypeVar("Wf")


class TrainEasyService(BatchCalls, DataTaskCalls, ModelCalls, DatasetCalls, KnownCalls, ListingCalls, MetricsCalls, RetryCalls):
    """Datasets and runs of the acting user; batches come from BatchCalls (with the quota calls), uploads, data
    checks and predictions from DataTaskCalls, model registry calls from ModelCalls, dataset deletion from
    DatasetCalls, what was last read of runs and batches (for while Temporal cannot be reached) from KnownCalls,
    the filtered and paged list of runs and batches from ListingCalls, workflow metrics from MetricsCalls and a
    run's retry from RetryCalls."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.storage = Storage(settings.home)
        self.registry = Registry(self.storage)
        self.quotas = Quotas(self.storage, settings)
        self.audit = AuditLog(self.storage)
        self.check_cache = CheckCache()
        self.watch = RunWatch()  # what earlier reads of each run saw: progress never goes back, the pace
        self.known = KnownViews()  # the last view of each run and list read, per user: shown during an outage

    # --- datasets ------------------------------------------------------------------------------
    def list_datasets(self, user: User) -> list[DatasetInfo]:
        return list_datasets(self.storage, user.name)

    def get_dataset(self, user: User, dataset_id: str) -> DatasetInfo:
        info = load_info(self.storage, user.name, dataset_id)
        if info is None:
            raise NotFound("No such dataset.")
        return info

    # --- training runs -------------------------------------------------------------------------
    @audited("launch", lambda a, r: r or f"{a[0].model} on {a[0].dataset_id}", refused=(UserError,))
    async def start_training(self, user: User, request: TrainRequest) -> str:
        return await self._launch_training(user, request)

    async def _launch_training(self, user: User, request: TrainRequest, memo: dict[str, str] | None = None) -> str:
        """Validate, reserve a slot and start the run (`memo`: what links it to another run, for a retry)."""
        request.owner = user.name  # the acting user owns the run, whatever the request said
        dataset = self._check_target(user, request.dataset_id, request.target)
        request.include_columns = list(dict.fromkeys(request.include_columns))  # a script may name one twice
        unknown = [str(c)[:80] for c in request.include_columns if c not in dataset.column_names]
        if unknown:  # the Train page offers only the dataset's own columns; a script may send anything
            raise InvalidInput(f"Not columns of {dataset.name}: {', '.join(map(repr, unknown[:5]))}.", "include_columns")
        spec, request.params = validated_params(request.model, request.params)
        check_target(spec, dataset, request.target)
        check_split(request.test_size, request.seed, request.cv_folds)
        rows = usable_rows(dataset, request.target)
        check_data_bounds(spec, request.params, rows, request.test_size, request.cv_folds, target_values(dataset, request.target))
        run_id = new_run_id("train", user.name)
        await self._reserve_run(user, run_id, "train", 1)
        await self._start_reserved(
            TrainingWorkflow.run,
            TrainInput(run_id, request),
            run_id,
            run_attributes(user.name, "train", request.dataset_id, request.model),
            memo,
        )
        return run_id

    def _check_target(self, user: User, dataset_id: str, target: str) -> DatasetInfo:
        dataset = self.get_dataset(user, dataset_id)
        if target not in dataset.column_names:
            raise InvalidInput(f"The target column {target!r} is not in {dataset.name}.", "target")
        return dataset

    async def list_runs(self, user: User, limit: int = 200) -> list[RunSummary]:
        runs = await self._list(f"Owner = '{user.name}' AND RunKind = 'train'", limit)
        self.known.remember(user.name, "runs", runs)
        return runs

    async def _list(self, query: str, limit: int) -> list[RunSummary]:
        """Newest first. Names in the query passed USERNAME_RE, so they cannot break out of the quotes."""
        runs = [
            build_run_summary(wf.id, wf.status, wf.typed_search_attributes, wf.start_time, wf.close_time, datetime.now(UTC))
            async for wf in self.client.list_workflows(query, limit=limit)
        ]
        return sorted(runs, key=lambda r: r.started_at or datetime.min.replace(tzinfo=UTC), reverse=True)

    async def _owned_handle(
        self, user: User, run_id: str
    ) -> tuple[WorkflowHandle[TrainingWorkflow, RunProgress], WorkflowExecutionDescription]:
        return await self._owned(user, run_id, "train", TrainingWorkflow.run)

    async def _owned(
        self, user: User, workflow_id: str, kind: str, run_method: MethodAsyncSingleParam[Wf, Any, Res]
    ) -> tuple[WorkflowHandle[Wf, Res], WorkflowExecutionDescription]:
        """(handle, description) of the user's own workflow of that kind; anything else is "not found"."""
        missing = NotFound(f"No such {'run' if kind == 'train' else kind}.")
        try:
            id_kind, owner = parse_run_id(workflow_id)
        except InvalidName:
            raise missing from None
        if owner != user.name or id_kind != kind:
            raise missing
        handle = self.client.get_workflow_handle_for(run_method, workflow_id)
        try:
            desc = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise missing from None
            raise
        if desc.typed_search_attributes.get(OWNER) != user.name:
            raise missing
        return handle, desc

    async def get_run(self, user: User, run_id: str) -> RunView:
        """The run as its page shows it: see orchestration.views.build_run_view for how the sources merge."""
        handle, desc = await self._owned_handle(user, run_id)
        view = await read_run(self.client.data_converter, handle, desc, self.watch(run_id))
        view.temporal_url = self.temporal_url(run_id)
        self.known.remember(user.name, f"run:{run_id}", view)
        return view

    def temporal_url(self, workflow_id: str) -> str | None:
        return temporal_ui_url(self.settings.temporal_ui_url, self.settings.namespace, workflow_id)

    def get_evaluation(self, user: User, run_id: str) -> Evaluation | None:
        """Chart data of a finished run (confusion matrix, curves, importance), from the run's folder."""
        try:
            path = self.storage.run_dir(user.name, run_id) / "evaluation.json"
        except (InvalidName, PermissionError):
            raise NotFound("No such run.") from None
        return value_to_type(Evaluation, json.loads(path.read_text())) if path.is_file() else None

    @audited("cancel", refused=(UserError,))
    async def cancel_run(self, user: User, run_id: str) -> None:
        handle, desc = await self._owned_handle(user, run_id)
        if status_name(desc.status) != "running":
            raise Conflict("This run has already finished.")
        await handle.cancel()

    def engine_info(self, admin: User) -> EngineInfo:
        if not admin.is_admin:
            raise Forbidden("Only an administrator can see the engine's settings.")
        s = self.settings
        return EngineInfo(s.temporal_target, s.namespace, s.task_queue, str(s.home))

    async def health(self) -> HealthReport:
        """The engine's health as the Admin page, the launcher and the API show it (orchestration/health.py)."""
        return await check_health(self.settings, self.client)
