"""The service's batch calls: start, watch, stop, retry the failed, finish or cancel a batch of runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle

from core.accounts import User
from core.config import Settings
from core.datasets import DatasetInfo
from core.names import new_run_id
from core.storage import Storage
from ml.catalog import get_model
from orchestration.auditing import audited
from orchestration.contracts import BatchInput, BatchProgress, BatchRequest, run_attributes
from orchestration.errors import Conflict, NotFound, UserError
from orchestration.known_views import KnownViews
from orchestration.liveness import live_workers, slots_on
from orchestration.progress import RunWatch
from orchestration.quota_calls import QuotaCalls
from orchestration.run_reader import batch_progress
from orchestration.validation import MAX_PARALLEL, check_batch, check_target, retry_edits, target_values, usable_rows
from orchestration.views import BatchView, RunSummary, RunView, elapsed_s, status_name
from orchestration.workflows import BatchTrainingWorkflow, TrainingWorkflow

READ_AT_ONCE = 8  # children read at once for a batch's view


class BatchCalls(QuotaCalls):
    """Mixed into TrainEasyService, which provides the client, the ownership check and the run view."""

    client: Client
    settings: Settings
    storage: Storage
    _check_target: Callable[[User, str, str], DatasetInfo]
    _owned: Callable[..., Awaitable[tuple[Any, Any]]]
    _list: Callable[[str, int], Awaitable[list[RunSummary]]]
    get_run: Callable[[User, str], Awaitable[RunView]]
    temporal_url: Callable[[str], str | None]
    watch: RunWatch
    known: KnownViews

    @audited("launch", lambda a, r: r or f"batch on {a[0].dataset_id}", refused=(UserError,))
    async def start_batch(self, user: User, request: BatchRequest) -> str:
        request.owner = user.name
        dataset = self._check_target(user, request.dataset_id, request.target)
        check_batch(request, usable_rows(dataset, request.target), target_values(dataset, request.target))
        for model in dict.fromkeys(item.model for item in request.items):  # one task per batch, but labels differ
            check_target(get_model(model), dataset, request.target)
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

    def default_parallelism(self) -> int:
        """One child per training slot of the worker processes alive now (orchestration/liveness.py): their
        heartbeat files only, no Temporal (so the right answer during an outage too, and no client-loop time)."""
        slots = slots_on(live_workers(self.storage), self.settings.task_queue)
        return max(1, min(MAX_PARALLEL, slots))

    async def list_batches(self, user: User, limit: int = 100) -> list[RunSummary]:
        batches = await self._list(f"Owner = '{user.name}' AND RunKind = 'batch'", limit)
        self.known.remember(user.name, "batches", batches)
        return batches

    async def _owned_batch(
        self, user: User, batch_id: str
    ) -> tuple[WorkflowHandle[BatchTrainingWorkflow, BatchProgress], WorkflowExecutionDescription]:
        return await self._owned(user, batch_id, "batch", BatchTrainingWorkflow.run)

    async def get_batch(self, user: User, batch_id: str) -> BatchView:
        handle, desc = await self._owned_batch(user, batch_id)
        status = status_name(desc.status)
        progress = await batch_progress(handle, status)
        if progress is not None and progress.batch_id != batch_id:
            raise NotFound("No such batch.")  # a result copied from another workflow: never shown
        percents: dict[str, float] = {}
        if progress is not None:
            percents = await self._settle_children(user, progress, closed=status != "running")
            if status != "running":
                progress.phase = "cancelled" if status == "cancelled" else "done"
        view = BatchView(
            batch_id,
            status,
            desc.start_time,
            elapsed_s(desc.start_time, desc.close_time, datetime.now(UTC)),
            progress,
            percents,
            self.temporal_url(batch_id),
        )
        self.known.remember(user.name, f"batch:{batch_id}", view)
        return view

    async def _settle_children(self, user: User, progress: BatchProgress, closed: bool) -> dict[str, float]:
        """Each child's percent (run id -> percent); once the batch is closed, also each child's true state.

        The batch's record of a child is its last word, not necessarily the child's: a batch started before
        it waited for its children closed as soon as the first one heard the cancel, the others still
        "running" in its record. So once the batch is closed, every child it did not see end is described
        in Temporal itself (no query: that would wait for a worker per child); one that never started is
        cancelled. Its percent is what this process last showed of it.
        """
        slots = asyncio.Semaphore(READ_AT_ONCE)
        if not closed:
            running = [c.run_id for c in progress.children if c.status == "running" and c.run_id]

            async def read(run_id: str) -> RunView:
                async with slots:
                    return await self.get_run(user, run_id)

            views = await asyncio.gather(*(read(r) for r in running), return_exceptions=True)
            return {r: v.percent for r, v in zip(running, views) if isinstance(v, RunView)}

        unsettled = [c for c in progress.children if c.status not in ("completed", "failed")]

        async def status(run_id: str) -> str:
            async with slots:
                _, desc = await self._owned(user, run_id, "train", TrainingWorkflow.run)
                return status_name(desc.status)

        started = [c for c in unsettled if c.run_id]
        found = await asyncio.gather(*(status(c.run_id) for c in started if c.run_id), return_exceptions=True)
        for child, state in zip(started, found):
            if isinstance(state, str):
                child.status = state
            elif isinstance(state, NotFound):
                child.status = "cancelled"  # its start was cancelled: it never ran
        for child in unsettled:
            if child.run_id is None:
                child.status = "cancelled"  # never started, and never will
        for child in started:
            if child.run_id and child.status == "completed" and not child.metrics:  # it ended after its batch
                child.metrics = dict((await self.get_run(user, child.run_id)).metrics)
        return {c.run_id: self.watch(c.run_id).percent for c in progress.children if c.run_id}

    @audited("stop", refused=(UserError,))
    async def stop_batch(self, user: User, batch_id: str) -> None:
        handle, desc = await self._owned_batch(user, batch_id)
        if status_name(desc.status) != "running":
            raise Conflict("This batch has already finished.")
        await handle.signal(BatchTrainingWorkflow.stop)

    @audited("retry", refused=(UserError,))
    async def retry_failed(self, user: User, batch_id: str, edits: dict[int, dict] | None = None) -> None:
        handle, desc = await self._owned_batch(user, batch_id)
        view = await self.get_batch(user, batch_id)
        if view.progress is None or view.progress.phase != "awaiting":
            raise Conflict("Nothing to retry: the batch has no failed runs waiting.")
        await handle.signal(BatchTrainingWorkflow.retry_failed, retry_edits(view.progress.children, edits))

    @audited("finish", refused=(UserError,))
    async def finish_batch(self, user: User, batch_id: str) -> None:
        handle, _ = await self._owned_batch(user, batch_id)
        await handle.signal(BatchTrainingWorkflow.finish)

    @audited("cancel", refused=(UserError,))
    async def cancel_batch(self, user: User, batch_id: str) -> None:
        handle, desc = await self._owned_batch(user, batch_id)
        if status_name(desc.status) != "running":
            raise Conflict("This batch has already finished.")
        await handle.cancel()
