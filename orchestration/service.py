"""The service facade used by pages and the API: validate, authorise, then start/query/cancel workflows.

Every call takes the acting user and enforces ownership itself; another user's run is "not found".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowFailureError, WorkflowHandle
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
from core.storage import Storage, write_atomic
from orchestration.activity_errors import storage_problem
from orchestration.auditing import audited
from orchestration.batch_calls import BatchCalls
from orchestration.check_cache import CheckCache, check_key
from orchestration.contracts import (
    OWNER,
    CheckReport,
    CheckRequest,
    IngestRequest,
    IngestResult,
    PredictRequest,
    PredictResult,
    RunProgress,
    TrainInput,
    TrainRequest,
    io_queue,
    run_attributes,
)
from orchestration.dataset_calls import DatasetCalls
from orchestration.errors import Conflict, Forbidden, InvalidInput, NotFound, NotReady, UserError
from orchestration.evaluation_view import Evaluation
from orchestration.health import EngineInfo, HealthReport, check_health
from orchestration.health_checks import liveness_unknown, workers_restarting
from orchestration.known_views import KnownCalls, KnownViews
from orchestration.listing_calls import ListingCalls
from orchestration.liveness import live_workers, serving
from orchestration.metrics_calls import MetricsCalls
from orchestration.model_calls import ModelCalls
from orchestration.progress import RunWatch
from orchestration.quota_calls import enforce_quota
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
from orchestration.workflows import CheckDataWorkflow, IngestWorkflow, PredictWorkflow, TrainingWorkflow
from orchestration.workflows.policy import failure_message

INGEST_TIMEOUT = timedelta(minutes=10)
Req = TypeVar("Req")
Res = TypeVar("Res")
Wf = TypeVar("Wf")


class TrainEasyService(BatchCalls, ModelCalls, DatasetCalls, KnownCalls, ListingCalls, MetricsCalls, RetryCalls):
    """Datasets, runs and predictions of the acting user; batches come from BatchCalls (with the quota calls),
    model registry calls from ModelCalls, dataset deletion from DatasetCalls, what was last read of runs and
    batches (for while Temporal cannot be reached) from KnownCalls, the filtered and paged list of runs and
    batches from ListingCalls, workflow metrics from MetricsCalls and a run's retry from RetryCalls."""

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

    @audited("upload", lambda a, r: getattr(r, "dataset_id", None) or a[0], refused=(UserError,))
    async def upload_dataset(self, user: User, filename: str, data: bytes) -> IngestResult:
        """Stage the bytes in the owner's folder; a worker validates, converts and profiles them."""
        limit = self.settings.max_upload_bytes
        if len(data) > limit:
            raise UserError(f"The file is {len(data) / 2**20:.1f} MB; the limit is {self.settings.max_upload_mb} MB.")
        staged: list[Path] = []

        def request() -> IngestRequest:  # staged only once the quotas let it through
            staged.append(self._stage_upload(user, data))
            return IngestRequest(user.name, staged[0].name, filename, limit, self.quotas.limits_for(user.name).max_cells)

        try:
            return await self._data_task(user, "ingest", IngestWorkflow.run, request, nbytes=len(data))
        finally:
            for path in staged:
                path.unlink(missing_ok=True)

    def _stage_upload(self, user: User, data: bytes) -> Path:
        staged = self.storage.upload_dir(user.name) / f"{secrets.token_hex(16)}.csv"
        try:
            write_atomic(staged, data)
        except OSError as exc:  # permission denied, disk full, read-only: said plainly, without the server's path
            sentence = storage_problem(exc)
            if sentence is None:
                raise
            raise UserError(sentence) from None
        return staged

    async def check_data(
        self,
        user: User,
        dataset_id: str,
        target: str,
        model: str,
        params: dict,
        cv_folds: int = 0,
        test_size: float = 0.2,
        include_columns: list[str] | None = None,
    ) -> CheckReport:
        """The data check of a dataset, target and model, computed by a worker; kept per user, dataset and
        the settings it reads (orchestration/check_cache.py), so other form changes answer at once."""
        dataset = self.get_dataset(user, dataset_id)
        spec, _ = validated_params(model, params)
        check_split(test_size, 0, cv_folds)  # what a launch accepts (the check has no seed)
        include = list(dict.fromkeys(include_columns or []))  # each once, in the order given
        key = check_key(user.name, dataset, target, spec, params, cv_folds, test_size, include)
        report = self.check_cache.get(key)
        if report is None:
            report = await self._data_task(
                user,
                "check",
                CheckDataWorkflow.run,
                lambda: CheckRequest(user.name, dataset_id, target, model, params, cv_folds, test_size, include),
            )
            self.check_cache.put(key, report)
        return report

    async def _data_task(
        self,
        user: User,
        kind: str,
        run: MethodAsyncSingleParam[Any, Req, Res],
        make_arg: Callable[[], Req],
        nbytes: int = 0,
    ) -> Res:
        """Run a short workflow on the I/O queue and return its result. Counted against the user's data
        tasks per minute (and, with `nbytes`, stored bytes); `make_arg()` runs only once that is granted."""
        # with the state folder unwritable no beat is fresh although workers may run: try, do not refuse
        if not serving(live_workers(self.storage), io_queue(self.settings.task_queue)) and not liveness_unknown(self.storage):
            if workers_restarting(self.storage):  # the launcher is bringing them back: no need to start anything
                raise NotReady(
                    "The worker processes are being restarted, so this cannot be done right now. Try again in a few seconds."
                )
            raise NotReady(
                "No worker process is running, so this cannot be done right now. "
                "Start the stack with `make run` (or a worker with `python -m workers`)."
            )
        run_id = new_run_id(kind, user.name)
        stored = self.quotas.stored_bytes(user.name) if nbytes else None
        enforce_quota(self.quotas.reserve_task, user.name, run_id, kind, nbytes, stored)
        try:
            handle = await self.client.start_workflow(
                run,
                make_arg(),
                id=run_id,
                task_queue=io_queue(self.settings.task_queue),
                execution_timeout=INGEST_TIMEOUT,
                search_attributes=run_attributes(user.name, kind),
            )
        except BaseException as err:
            self._unreserve(run_id, err)
            raise
        try:
            return await handle.result()
        except WorkflowFailureError as err:
            raise UserError(failure_message(err)) from None
        finally:
            self.quotas.mark_closed([run_id])  # still counts for the rate; its bytes are on disk now

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

    # --- predictions (the registry calls are in ModelCalls) -----------------------------------
    @audited("predict", lambda a, r: f"model {a[0]}", refused=(UserError,))
    async def predict(self, user: User, model_id: int, filename: str, data: bytes) -> PredictResult:
        self.get_model(user, model_id)
        if len(data) > self.settings.max_upload_bytes:
            raise UserError(f"The file is {len(data) / 2**20:.1f} MB; the limit is {self.settings.max_upload_mb} MB.")
        staged: list[Path] = []

        def request() -> PredictRequest:
            staged.append(self._stage_upload(user, data))
            limits = self.quotas.limits_for(user.name)
            # the file may be far larger than the input (a probability column per class): the worker refuses
            # one beyond the cells limit or the storage left, before writing it
            left = limits.max_stored_bytes - self.quotas.stored_bytes(user.name)
            return PredictRequest(
                user.name,
                model_id,
                staged[0].name,
                filename,
                self.settings.max_upload_bytes,
                max_cells=limits.max_cells,
                max_columns=self.settings.max_columns,
                max_output_bytes=max(1, left),
            )

        try:  # the input's size is reserved against stored bytes while the prediction runs
            result = await self._data_task(user, "predict", PredictWorkflow.run, request, nbytes=len(data))
        finally:
            for path in staged:
                path.unlink(missing_ok=True)
        # the rows never travel through Temporal (its history keeps them): read them from the written file
        result.preview = self.prediction_preview(user, result.file)
        return result

    def engine_info(self, admin: User) -> EngineInfo:
        if not admin.is_admin:
            raise Forbidden("Only an administrator can see the engine's settings.")
        s = self.settings
        return EngineInfo(s.temporal_target, s.namespace, s.task_queue, str(s.home))

    async def health(self) -> HealthReport:
        """The engine's health as the Admin page, the launcher and the API show it (orchestration/health.py)."""
        return await check_health(self.settings, self.client)
