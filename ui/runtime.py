"""One Temporal client per Streamlit process, on one background event loop; pages call it synchronously.

The Temporal client is asyncio-based and not thread-safe, while Streamlit runs each session in its own
thread: so every call is submitted to the one loop that owns the client.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Collection, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st

from core.accounts import User
from core.config import load_settings
from core.datasets import DatasetInfo
from core.model_record import ModelRecord
from core.quota_limits import Limits, Usage
from core.registry import RetentionResult
from core.retention import RetentionPlan
from core.storage import Storage
from orchestration.account_service import AccountService
from orchestration.audit_service import AuditService
from orchestration.client import connect
from orchestration.contracts import BatchRequest, CheckReport, IngestResult, PredictResult, TrainRequest
from orchestration.dataset_calls import DatasetDeleted, DatasetDependents
from orchestration.errors import NotFound, UserError
from orchestration.evaluation_view import Evaluation
from orchestration.health import EngineInfo, HealthReport
from orchestration.service import TrainEasyService
from orchestration.views import BatchView, RunSummary, RunView
from ui.auth import audit_log
from ui.text import md

log = logging.getLogger("traineasy.ui")
DEFAULT_TIMEOUT = 20.0
DATA_TASK_TIMEOUT = 660.0  # uploads and predictions run in a worker (the service allows them 10 minutes)
CHECK_TIMEOUT = 120.0  # the guardrail report, also computed by a worker
T = TypeVar("T")


class Unavailable(Exception):
    """Temporal cannot be reached."""


class SyncService:
    """The service's calls for Streamlit's script threads, typed one by one: each coroutine runs on the
    client's loop with its timeout; the synchronous calls (files and the app database) run here."""

    def __init__(self, loop: asyncio.AbstractEventLoop, service: TrainEasyService) -> None:
        self._loop, self._service = loop, service

    def _run(self, call: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout)

    # --- engine -----------------------------------------------------------------------------------
    def health(self) -> HealthReport:
        return self._run(self._service.health())

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

    def get_evaluation(self, user: User, run_id: str) -> Evaluation | None:
        return self._service.get_evaluation(user, run_id)

    def cancel_run(self, user: User, run_id: str) -> None:
        return self._run(self._service.cancel_run(user, run_id))

    # --- batches ----------------------------------------------------------------------------------
    def default_parallelism(self) -> int:
        return self._run(self._service.default_parallelism())

    def start_batch(self, user: User, request: BatchRequest) -> str:
        return self._run(self._service.start_batch(user, request))

    def list_batches(self, user: User) -> list[RunSummary]:
        return self._run(self._service.list_batches(user))

    def get_batch(self, user: User, batch_id: str) -> BatchView:
        return self._run(self._service.get_batch(user, batch_id))

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


@st.cache_resource(show_spinner=False)
def _backend() -> SyncService:
    settings = load_settings()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="temporal-client-loop", daemon=True).start()
    try:
        client = asyncio.run_coroutine_threadsafe(connect(settings), loop).result(10)
    except Exception as exc:  # not cached: the next rerun tries again
        loop.call_soon_threadsafe(loop.stop)
        log.warning("cannot connect to Temporal at %s: %s", settings.temporal_target, exc)  # the detail: log only
        raise Unavailable(f"The training engine (Temporal) is not reachable at {settings.temporal_target}") from None
    return SyncService(loop, TrainEasyService(client, settings))


def service() -> SyncService:
    return _backend()


@st.cache_resource(show_spinner=False)
def audit_service() -> AuditService:
    return AuditService(Storage(load_settings().home))


@st.cache_resource(show_spinner=False)
def accounts_service() -> AccountService:
    """Accounts need no Temporal: they keep working while the engine is down."""
    return AccountService(load_settings())


def audit(action: str, obj: str = "", *, user: User, outcome: str = "ok", detail: str = "") -> None:
    """Record what a user did from a page (the service records what goes through it)."""
    audit_log().record(user.name, action, obj, outcome, user.address, detail)


def fetch_owned(what: str, load: Callable[[], T]) -> T | None:
    """`load()`, or None after saying why: not found (another user's, or a wrong link) or a failure."""
    with guard(f"Reading the {what}"):
        try:
            return load()
        except NotFound:
            st.error(f"{what.capitalize()} not found. It may belong to another user, or the link is wrong.")
    return None


@contextmanager
def guard(action: str = "That") -> Iterator[None]:
    """Turn failures into a message on the page; never a traceback."""
    try:
        yield
    except UserError as err:
        st.error(md(str(err)))
    except Unavailable as err:
        st.error(f"{err}. Is the stack running (`make run`)?")
    except TimeoutError:
        st.error(f"{action} took too long to answer. Temporal or the workers may be overloaded; try again shortly.")
    except Exception:
        log.exception("unexpected error")
        st.error(f"{action} failed unexpectedly. The details are in the app log.")
