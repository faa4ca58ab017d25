"""The service's dataset deletion: what depends on a dataset (models trained on it, runs in flight on it),
and deleting it once no run in flight uses it. Models trained on it keep working: they need only their
own files."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from core.accounts import User
from core.audit import AuditLog
from core.datasets import DatasetInfo, hide_dataset, remove_hidden, restore_dataset
from core.model_record import ModelRecord
from core.quota_limits import LedgerEntry
from core.quotas import START_GRACE_S, Quotas
from core.registry import Registry
from core.storage import Storage
from orchestration.auditing import audited
from orchestration.contracts import DATASET
from orchestration.errors import NotFound, UserError
from orchestration.run_reader import QUERY_TIMEOUT

LIST_LIMIT = 100


@dataclass(frozen=True)
class DatasetDependents:
    """What the Datasets page shows before a delete."""

    dataset: DatasetInfo
    models: tuple[ModelRecord, ...]  # trained on it; they keep working once it is gone
    runs_in_flight: tuple[str, ...]  # run and batch ids; while there is one, the delete is refused

    @property
    def can_delete(self) -> bool:
        return not self.runs_in_flight


@dataclass(frozen=True)
class DatasetDeleted:
    dataset_id: str
    name: str
    freed_bytes: int
    models_kept: int


class DatasetCalls:
    """Mixed into TrainEasyService, whose client, storage, registry, quotas and ownership check these use."""

    client: Client
    storage: Storage
    registry: Registry
    quotas: Quotas
    audit: AuditLog
    get_dataset: Callable[[User, str], DatasetInfo]

    async def dataset_dependents(self, user: User, dataset_id: str) -> DatasetDependents:
        """The user's dataset with the models trained on it and the runs in flight on it (another user's
        dataset, or an unknown id: NotFound)."""
        info = self.get_dataset(user, dataset_id)
        runs = await self._runs_on_dataset(user.name, info.dataset_id)
        return DatasetDependents(info, tuple(self.registry.trained_on(user.name, info.dataset_id)), runs)

    @audited("delete", lambda a, r: f"dataset {a[0]}", refused=(UserError,))
    async def delete_dataset(self, user: User, dataset_id: str) -> DatasetDeleted:
        """Delete the user's dataset and its files, refused while a run or batch on it is in flight. The
        dataset is hidden first (one rename, so no new launch can find it) and checked again; the freed
        bytes leave the user's stored total at once (it is measured on disk)."""
        info = self.get_dataset(user, dataset_id)
        _refuse_if_busy(await self._runs_on_dataset(user.name, info.dataset_id))
        try:
            hidden = hide_dataset(self.storage, user.name, info.dataset_id)
        except FileNotFoundError:  # deleted meanwhile (another tab)
            raise NotFound("No such dataset.") from None
        try:
            _refuse_if_busy(await self._runs_on_dataset(user.name, info.dataset_id))  # one started meanwhile
        except BaseException:
            restore_dataset(self.storage, user.name, info.dataset_id, hidden)
            raise
        freed = remove_hidden(hidden)
        self.registry.remember_deleted_dataset(user.name, info.dataset_id, info.name)  # runs on it still name it
        return DatasetDeleted(info.dataset_id, info.name, freed, len(self.registry.trained_on(user.name, info.dataset_id)))

    async def _runs_on_dataset(self, owner: str, dataset_id: str) -> tuple[str, ...]:
        """Ids of the owner's runs and batches on the dataset that have not closed. From the launch ledger
        (every launch is there before it starts; describe tells the truth about each) and the visibility
        list (children of a batch). A launch not started yet counts, as its dataset cannot be known."""
        now = self.quotas.clock()

        async def on_it(entry: LedgerEntry) -> bool | None:  # None: closed
            try:
                desc = await self.client.get_workflow_handle(entry.run_id).describe(rpc_timeout=QUERY_TIMEOUT)
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return True if now - entry.started_at <= START_GRACE_S else None
                raise
            if desc.status != WorkflowExecutionStatus.RUNNING:
                return None
            return desc.typed_search_attributes.get(DATASET) == dataset_id

        try:
            entries = self.quotas.open_runs(owner)
            found = await asyncio.gather(*(on_it(e) for e in entries))
            listed = [
                wf.id
                async for wf in self.client.list_workflows(
                    f"Owner = '{owner}' AND DatasetId = '{dataset_id}' AND ExecutionStatus = 'Running'", limit=LIST_LIMIT
                )
            ]
        except RPCError:
            raise UserError(
                "Could not check for runs on this dataset right now (the training engine did not answer). "
                "Nothing was deleted; try again shortly."
            ) from None
        self.quotas.mark_closed(e.run_id for e, f in zip(entries, found) if f is None)
        ids = [e.run_id for e, f in zip(entries, found) if f]
        return tuple(dict.fromkeys([*ids, *listed]))


def _refuse_if_busy(runs: tuple[str, ...]) -> None:
    if runs:
        raise UserError(
            f"{len(runs)} run(s) on this dataset are still in flight. Wait for them to finish or cancel them, "
            "then delete the dataset."
        )
