"""The service's short data tasks, each a workflow on the I/O queue that a worker runs in seconds: an upload's
ingest, the data check of a dataset, target and model, and a prediction file. Each is counted against the user's
data tasks per minute (and stored bytes) before anything is staged or started."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowFailureError
from temporalio.types import MethodAsyncSingleParam

from core.accounts import User
from core.config import Settings
from core.datasets import DatasetInfo
from core.model_record import ModelRecord
from core.names import new_run_id
from core.quotas import Quotas
from core.storage import Storage, write_atomic
from orchestration.activity_errors import storage_problem
from orchestration.auditing import audited
from orchestration.check_cache import CheckCache, check_key
from orchestration.contracts import (
    CheckReport,
    CheckRequest,
    IngestRequest,
    IngestResult,
    PredictRequest,
    PredictResult,
    io_queue,
    run_attributes,
)
from orchestration.errors import NotReady, UserError
from orchestration.health_checks import liveness_unknown, workers_restarting
from orchestration.liveness import live_workers, serving
from orchestration.quota_calls import enforce_quota
from orchestration.validation import check_split, validated_params
from orchestration.workflows import CheckDataWorkflow, IngestWorkflow, PredictWorkflow
from orchestration.workflows.policy import failure_message

TASK_TIMEOUT = timedelta(minutes=10)  # an upload, a check or a prediction, from start to result
Req = TypeVar("Req")
Res = TypeVar("Res")


class DataTaskCalls:
    """Mixed into TrainEasyService, which provides the client, quotas, storage, the check cache, the dataset and
    model lookups and the quota release."""

    client: Client
    settings: Settings
    storage: Storage
    quotas: Quotas
    check_cache: CheckCache
    get_dataset: Callable[[User, str], DatasetInfo]
    get_model: Callable[[User, int], ModelRecord]
    prediction_preview: Callable[..., list[dict[str, Any]]]
    _unreserve: Callable[[str, BaseException], None]

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
                execution_timeout=TASK_TIMEOUT,
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
