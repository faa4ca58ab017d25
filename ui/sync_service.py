"""The typed, synchronous facade the pages call: one method per service call, coroutines run on the one
Temporal client loop of the process, and calls that need Temporal fail at once while it cannot be reached."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Collection, Coroutine
from typing import Any, TypeVar

from core.accounts import User
from core.datasets import DatasetInfo
from core.model_record import ModelRecord
from core.quota_limits import Limits, Usage
from core.registry import RetentionResult
from core.retention import RetentionPlan
from orchestration.contracts import BatchRequest, CheckReport, IngestResult, PredictResult, TrainRequest
from orchestration.dataset_calls import DatasetDeleted, DatasetDependents
from orchestration.engine_watch import EngineState, EngineWatch
from orchestration.evaluation_view import Evaluation
from orchestration.health import UNREACHABLE, EngineInfo, HealthReport, unreachable
from orchestration.known_views import Known
from orchestration.service import TrainEasyService
from orchestration.views import BatchView, RunSummary, RunView

log = logging.getLogger("traineasy.ui")
DEFAULT_TIMEOUT = 20.0
DATA_TASK_TIMEOUT = 660.0  # uploads and predictions run in a worker (the service allows them 10 minutes)
CHECK_TIMEOUT = 120.0  # the guardrail report, also computed by a worker
WAIT_SLICE = 0.25  # seconds: how often a call under way looks whether the engine watch has seen an outage
T = TypeVar("T")


class Unavailable(Exception):
    """Temporal cannot be reached: the call was not made (the engine watch says it is down), or it failed to
    reach the server. Its text says so in plain words ("Temporal is not reachable …")."""


class SyncService:
    """The service's calls for Streamlit's script threads, typed one by one: each coroutine runs on the
    client's loop with its timeout; the synchronous calls (files and the app database) run here.

    Every coroutine needs Temporal: while the engine watch says it is down, it is not even started and the
    call raises Unavailable at once; one that fails to reach the server raises Unavailable too (and asks the
    watch to probe now). Without a watch (tests), every call is tried."""

    def __init__(self, loop: asyncio.AbstractEventLoop, service: TrainEasyService, watch: EngineWatch | None = None) -> None:
        self._loop, self._service, self._watch = loop, service, watch

    def close(self) -> None:
        """Stop the engine watch and the client's loop: the cached backend is being dropped."""
        if self._watch is not None:
            self._watch.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)

    def engine(self) -> EngineState:
        """Whether Temporal answers, as this process's engine watch last saw it."""
        return self._watch.snapshot() if self._watch is not None else EngineState()

    def _run(self, call: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        state = self.engine()
        if state.down:
            call.close()  # never started: no RPC, and no "never awaited" warning
            raise Unavailable(state.reason())
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        deadline = time.monotonic() + timeout
        while not future.done():
            try:
                future.result(max(0.0, min(WAIT_SLICE, deadline - time.monotonic())))
            except concurrent.futures.TimeoutError:
                if future.done():
                    break  # the call's own TimeoutError, told below
                # a hung server (stopped, not dead) answers nothing: once the watch has seen it, stop waiting
                state = self.engine()
                if state.down:
                    future.cancel()
                    log.warning("a call was given up: the engine watch says Temporal is not reachable")
                    raise Unavailable(state.reason()) from None
                if time.monotonic() >= deadline:
                    future.cancel()
                    raise TimeoutError(f"no answer within {timeout:.0f} s") from None  # guard() words it
            except Exception:
                break  # the call's own failure, told below
        try:
            return future.result()
        except Exception as exc:
            if unreachable(exc):  # the call's own failure to reach the server
                log.warning("a call could not reach Temporal: %s", str(exc).splitlines()[0][:200] if str(exc) else exc)
                if self._watch is not None:
                    self._watch.poke()
                raise Unavailable(UNREACHABLE) from None
            raise

    # --- engine -----------------------------------------------------------------------------------
    def health(self) -> HealthReport:
        """Also while Temporal is down: its probe fails at once (no retries), and storage, the app database,
        the workers and the launcher are worth seeing then most of all."""
        return asyncio.run_coroutine_threadsafe(self._service.health(), self._loop).result(DEFAULT_TIMEOUT)

    def engine_info(self, admin: User) -> EngineInfo:
        return self._service.engine_info(admin)

    # --- datasets ---------------------------------------------------------------------------------
    def list_datasets(self, user: User) -> list[DatasetInfo]:
        return self._service.list_datasets(user)

    def upload_dataset(self, user: User, filename: str, data: bytes) -> IngestResult:
        return self._run(self._service.upload_dataset(user, filename, data), DATA_TASK_TIMEOUT)

    def dataset_dependents(self, user: User, dataset_id: str) -> DatasetDependents:
        return self._run(self._service.dataset_dependents(user, dataset_id))

    def delete_dataset(self, user: User, dataset_id: str) -> DatasetDeleted:
        return self._run(self._service.delete_dataset(user, dataset_id))

    def check_data(
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
        call = self._service.check_data(user, dataset_id, target, model, params, cv_folds, test_size, include_columns)
        return self._run(call, CHECK_TIMEOUT)

    # --- training runs ----------------------------------------------------------------------------
    def start_training(self, user: User, request: TrainRequest) -> str:
        return self._run(self._service.start_training(user, request))

    def list_runs(self, user: User) -> list[RunSummary]:
        return self._run(self._service.list_runs(user))

    def get_run(self, user: User, run_id: str) -> RunView:
        return self._run(self._service.get_run(user, run_id))

    def known_run(self, user: User, run_id: str) -> Known[RunView] | None:
        return self._service.known_run(user, run_id)

    def known_runs(self, user: User) -> Known[list[RunSummary]]:
        return self._service.known_runs(user)

    def get_evaluation(self, user: User, run_id: str) -> Evaluation | None:
        return self._service.get_evaluation(user, run_id)

    def cancel_run(self, user: User, run_id: str) -> None:
        return self._run(self._service.cancel_run(user, run_id))

    # --- batches ----------------------------------------------------------------------------------
    def default_parallelism(self) -> int:
        """From the workers' heartbeat files: no Temporal, so also right during an outage."""
        return self._service.default_parallelism()

    def start_batch(self, user: User, request: BatchRequest) -> str:
        return self._run(self._service.start_batch(user, request))

    def list_batches(self, user: User) -> list[RunSummary]:
        return self._run(self._service.list_batches(user))

    def get_batch(self, user: User, batch_id: str) -> BatchView:
        return self._run(self._service.get_batch(user, batch_id))

    def known_batch(self, user: User, batch_id: str) -> Known[BatchView] | None:
        return self._service.known_batch(user, batch_id)

    def known_batches(self, user: User) -> Known[list[RunSummary]] | None:
        return self._service.known_batches(user)

    def stop_batch(self, user: User, batch_id: str) -> None:
        return self._run(self._service.stop_batch(user, batch_id))

    def retry_failed(self, user: User, batch_id: str, edits: dict[int, dict] | None = None) -> None:
        return self._run(self._service.retry_failed(user, batch_id, edits))

    def finish_batch(self, user: User, batch_id: str) -> None:
        return self._run(self._service.finish_batch(user, batch_id))

    def cancel_batch(self, user: User, batch_id: str) -> None:
        return self._run(self._service.cancel_batch(user, batch_id))

    # --- models -----------------------------------------------------------------------------------
    def list_models(self, user: User) -> list[ModelRecord]:
        return self._service.list_models(user)

    def model_download(self, user: User, model_id: int) -> tuple[bytes, bytes]:
        return self._service.model_download(user, model_id)

    def delete_model(self, user: User, model_id: int) -> int:
        return self._service.delete_model(user, model_id)

    def keep_last(self, user: User) -> int | None:
        return self._service.keep_last(user)

    def retention_preview(self, user: User, keep_last: int) -> RetentionPlan:
        return self._service.retention_preview(user, keep_last)

    def apply_retention(self, user: User, keep_last: int, model_ids: Collection[int]) -> RetentionResult:
        return self._service.apply_retention(user, keep_last, model_ids)

    def tag_model(self, user: User, model_id: int, tag: str) -> ModelRecord:
        return self._service.tag_model(user, model_id, tag)

    def untag_model(self, user: User, model_id: int, tag: str) -> ModelRecord:
        return self._service.untag_model(user, model_id, tag)

    def known_dataset_names(self, user: User) -> dict[str, str]:
        return self._service.known_dataset_names(user)

    def predict(self, user: User, model_id: int, filename: str, data: bytes) -> PredictResult:
        return self._run(self._service.predict(user, model_id, filename, data), DATA_TASK_TIMEOUT)

    def prediction_file(self, user: User, name: str) -> bytes:
        return self._service.prediction_file(user, name)

    # --- quotas -----------------------------------------------------------------------------------
    def usage(self, user: User) -> Usage:
        return self._run(self._service.usage(user))

    def quota_overview(self, admin: User, usernames: list[str]) -> list[Usage]:
        return self._run(self._service.quota_overview(admin, usernames))

    def default_limits(self, admin: User) -> Limits:
        return self._service.default_limits(admin)

    def set_quota_override(self, admin: User, username: str, **limits: int | None) -> Limits:
        return self._service.set_quota_override(admin, username, **limits)

    def clear_quota_override(self, admin: User, username: str) -> Limits:
        return self._service.clear_quota_override(admin, username)
