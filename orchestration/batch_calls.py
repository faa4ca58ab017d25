"""The service's batch calls: start, watch, stop, retry the failed, finish or cancel a batch of runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from core.accounts import User
from core.config import Settings
from core.datasets import DatasetInfo
from core.names import new_run_id
from orchestration.auditing import audited
from orchestration.contracts import BatchInput, BatchRequest, run_attributes
from orchestration.errors import NotFound, UserError
from orchestration.quota_calls import QuotaCalls
from orchestration.run_reader import batch_progress
from orchestration.validation import MAX_PARALLEL, check_batch, retry_edits, usable_rows
from orchestration.views import BatchView, RunSummary, RunView, elapsed_s, status_name
from orchestration.workflows import BatchTrainingWorkflow


class BatchCalls(QuotaCalls):
    """Mixed into TrainEasyService, which provides the client, the ownership check and the run view."""

    client: Client
    settings: Settings
    _check_target: Callable[[User, str, str], DatasetInfo]
    _owned: Callable[..., Awaitable[tuple[Any, Any]]]
    _list: Callable[[str, int], Awaitable[list[RunSummary]]]
    get_run: Callable[[User, str], Awaitable[RunView]]

    @audited("launch", lambda a, r: r or f"batch on {a[0].dataset_id}", refused=(UserError,))
    async def start_batch(self, user: User, request: BatchRequest) -> str:
        request.owner = user.name
        dataset = self._check_target(user, request.dataset_id, request.target)
        check_batch(request, usable_rows(dataset, request.target))
        batch_id = new_run_id("batch", user.name)
        # A batch runs at most max_parallel children at once, so it holds that many of the owner's slots.
        # With fewer free, it starts anyway, clamped to the free slots (it only takes longer); with none,
        # it is refused like a single run. The caller reads the granted value back from the request.
        wanted = min(request.max_parallel, len(request.items))
        granted = await self._reserve_run(user, batch_id, "batch", wanted, min_slots=1)
        if granted < wanted:
            request.max_parallel = granted
        await self._start_reserved(
            BatchTrainingWorkflow.run,
            BatchInput(batch_id, request),
            batch_id,
            run_attributes(user.name, "batch", request.dataset_id),
        )
        return batch_id

    async def default_parallelism(self) -> int:
        """One child per training slot: each worker process trains one model at a time."""
        from orchestration.client import count_pollers

        try:
            return max(1, min(MAX_PARALLEL, await count_pollers(self.client, self.settings.task_queue)))
        except RPCError:
            return 1

    async def list_batches(self, user: User, limit: int = 100) -> list[RunSummary]:
        return await self._list(f"Owner = '{user.name}' AND RunKind = 'batch'", limit)

    async def _owned_batch(self, user: User, batch_id: str):
        return await self._owned(user, batch_id, "batch", BatchTrainingWorkflow.run)

    async def get_batch(self, user: User, batch_id: str) -> BatchView:
        handle, desc = await self._owned_batch(user, batch_id)
        status = status_name(desc.status)
        progress = await batch_progress(handle, status)
        if progress is not None and progress.batch_id != batch_id:
            raise NotFound("No such batch.")  # a result copied from another workflow: never shown
        percents: dict[str, float] = {}
        if progress is not None and status == "running":
            running = [c.run_id for c in progress.children if c.status == "running" and c.run_id]
            views = await asyncio.gather(*(self.get_run(user, r) for r in running), return_exceptions=True)
            percents = {r: v.percent for r, v in zip(running, views) if isinstance(v, RunView)}
        return BatchView(
            batch_id, status, desc.start_time, elapsed_s(desc.start_time, desc.close_time, datetime.now(UTC)), progress, percents
        )

    @audited("stop", refused=(UserError,))
    async def stop_batch(self, user: User, batch_id: str) -> None:
        handle, desc = await self._owned_batch(user, batch_id)
        if status_name(desc.status) != "running":
            raise UserError("This batch has already finished.")
        await handle.signal(BatchTrainingWorkflow.stop)

    @audited("retry", refused=(UserError,))
    async def retry_failed(self, user: User, batch_id: str, edits: dict[int, dict] | None = None) -> None:
        handle, desc = await self._owned_batch(user, batch_id)
        view = await self.get_batch(user, batch_id)
        if view.progress is None or view.progress.phase != "awaiting":
            raise UserError("Nothing to retry: the batch has no failed runs waiting.")
        await handle.signal(BatchTrainingWorkflow.retry_failed, retry_edits(view.progress.children, edits))

    @audited("finish", refused=(UserError,))
    async def finish_batch(self, user: User, batch_id: str) -> None:
        handle, _ = await self._owned_batch(user, batch_id)
        await handle.signal(BatchTrainingWorkflow.finish)

    @audited("cancel", refused=(UserError,))
    async def cancel_batch(self, user: User, batch_id: str) -> None:
        handle, desc = await self._owned_batch(user, batch_id)
        if status_name(desc.status) != "running":
            raise UserError("This batch has already finished.")
        await handle.cancel()
