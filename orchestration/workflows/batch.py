"""The batch workflow: one child training run per configuration, a leaderboard, stop, retry of the failed, finish."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError, is_cancelled_exception

from orchestration.workflows.data import DATA_TASK_TIMEOUT
from orchestration.workflows.policy import RETRY, failure_message
from orchestration.workflows.training import TrainingWorkflow

with workflow.unsafe.imports_passed_through():
    from core.names import format_run_id
    from orchestration.contracts import (
        PRIMARY_METRIC,
        BatchInput,
        BatchProgress,
        ChildState,
        TagRequest,
        TrainInput,
        TrainRequest,
        io_queue,
        run_attributes,
    )
    from orchestration.data_activities import DataActivities

# Batches started from this version tag their best finished child when cancelled, as a stop does: its model
# stays, starred in the leaderboard, so it must carry the tag that keeps retention from deleting it.
BEST_TAGGED_ON_CANCEL = "batch-best-tagged-on-cancel"
AWAIT_DECISION = timedelta(days=1)  # how long a batch with failures waits for "retry failed" or "finish"
# Batches started from this version wait for every child to record its end before the batch closes: before
# it, a cancelled batch closed at the first child that heard the cancel, its other children still "running".
CHILDREN_SETTLE = "batch-children-settle"


@workflow.defn
class BatchTrainingWorkflow:
    """One child TrainingWorkflow per configuration, at most `max_parallel` at once.

    A failing child does not fail the batch. When some failed, the batch waits for the user: the
    `retry_failed` signal re-runs only those (optionally with edited parameters), `finish` closes it.
    The `stop` signal cancels running children and keeps the finished ones; cancelling the batch
    cancels every child.
    """

    def __init__(self) -> None:
        self._progress: BatchProgress | None = None
        self._stop = False
        self._finish = False
        self._retry: dict[str, dict[str, Any]] | None = None
        self._running: dict[int, asyncio.Task] = {}

    @workflow.run
    async def run(self, inp: BatchInput) -> BatchProgress:
        req = inp.request
        self._progress = progress = BatchProgress(
            batch_id=inp.batch_id,
            dataset_id=req.dataset_id,
            target=req.target,
            task=req.task,
            primary_metric=PRIMARY_METRIC[req.task],
            max_parallel=req.max_parallel,
            sweep=req.sweep,
            children=[ChildState(i, item.model, dict(item.params)) for i, item in enumerate(req.items)],
        )
        settle = workflow.patched(CHILDREN_SETTLE)
        try:
            await self._run_children(inp, settle)
        except BaseException as err:
            if is_cancelled_exception(err):
                # final, true states: a configuration that never started never will
                for c in progress.children:
                    if c.status == "pending":
                        c.status = "cancelled"
                progress.phase = "cancelled"
                if workflow.patched(BEST_TAGGED_ON_CANCEL):
                    # what finished stays, as after a stop: the best of it is tagged, so retention keeps it
                    self._rank()
                    try:
                        await self._tag_best(inp)
                    except ActivityError:  # the batch still ends cancelled, as asked; the tag is not worth a failure
                        workflow.logger.warning("could not tag the best model of cancelled batch %s", inp.batch_id)
            raise
        progress.phase = "done"
        return progress

    async def _run_children(self, inp: BatchInput, settle: bool) -> None:
        req, progress = inp.request, self._progress
        assert progress is not None
        slots = asyncio.Semaphore(req.max_parallel)
        while True:
            todo = [c for c in progress.children if c.status == "pending"]
            tasks = [asyncio.create_task(self._child(inp, c, slots)) for c in todo]
            self._running = {c.index: t for c, t in zip(todo, tasks)}
            if settle:
                # A cancel of the batch reaches every child task; wait until each has recorded its end (the
                # gather then raises the cancel), instead of closing at the first one that hears it.
                ended = await asyncio.gather(*tasks, return_exceptions=True)
                failed = next((e for e in ended if isinstance(e, BaseException)), None)
                if failed is not None:
                    raise failed
            else:
                await asyncio.gather(*tasks)
            self._rank()
            if self._stop or not any(c.status == "failed" for c in progress.children):
                break
            progress.phase = "awaiting"
            try:
                await workflow.wait_condition(
                    lambda: self._retry is not None or self._finish or self._stop, timeout=AWAIT_DECISION
                )
            except TimeoutError:
                break
            if self._retry is None:
                break
            for c in progress.children:
                if c.status == "failed":
                    c.status, c.error = "pending", None
                    c.params = dict(self._retry.get(str(c.index), c.params))
            self._retry, progress.phase = None, "running"
        await self._tag_best(inp)

    async def _tag_best(self, inp: BatchInput) -> None:
        """Tag the best finished child's model "best of <batch>" (nothing when none finished)."""
        progress = self._progress
        assert progress is not None
        if progress.best_run_id:
            await workflow.execute_activity_method(
                DataActivities.tag_model,
                TagRequest(inp.request.owner, progress.best_run_id, f"best of {inp.batch_id}"),
                task_queue=io_queue(workflow.info().task_queue),
                start_to_close_timeout=DATA_TASK_TIMEOUT,
                retry_policy=RETRY,
            )
            progress.best_tagged = True

    async def _child(self, inp: BatchInput, child: ChildState, slots: asyncio.Semaphore) -> None:
        try:
            async with slots:
                if not self._stop:
                    await self._run_child(inp, child)
                else:
                    child.status = "cancelled"
        except asyncio.CancelledError:
            child.status = "cancelled"
            if not self._stop:
                raise  # the whole batch is being cancelled, not stopped

    async def _run_child(self, inp: BatchInput, child: ChildState) -> None:
        req = inp.request
        run_id = format_run_id("train", req.owner, workflow.uuid4().hex)
        child.run_id, child.status, child.attempts = run_id, "running", child.attempts + 1
        started = workflow.now()
        try:
            result = await workflow.execute_child_workflow(
                TrainingWorkflow.run,
                TrainInput(
                    run_id,
                    TrainRequest(
                        req.owner, req.dataset_id, req.target, child.model, child.params, req.seed, req.test_size, req.cv_folds
                    ),
                ),
                id=run_id,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                # children do not inherit search attributes: the run list and ownership checks need them
                search_attributes=run_attributes(req.owner, "train", req.dataset_id, child.model),
            )
            child.status, child.metrics = "completed", dict(result.metrics)
            child.worker, child.curve = result.facts.worker, dict(result.facts.curve or {})
        except ChildWorkflowError as err:
            if is_cancelled_exception(err):
                child.status = "cancelled"
            else:
                child.status, child.error = "failed", failure_message(err)
        except GeneratorExit:
            raise  # the worker dropped this workflow from its cache (it closed): no workflow calls now
        except BaseException:
            self._ended(child, started)
            raise
        self._ended(child, started)

    def _ended(self, child: ChildState, started: datetime) -> None:
        child.seconds = (workflow.now() - started).total_seconds()
        self._rank()

    def _rank(self) -> None:
        progress = self._progress
        assert progress is not None
        scored = [c for c in progress.children if c.status == "completed" and progress.primary_metric in c.metrics]
        best = max(scored, key=lambda c: c.metrics[progress.primary_metric], default=None)
        progress.best_run_id = best.run_id if best else None

    @workflow.query
    def progress(self) -> BatchProgress | None:
        return self._progress

    @workflow.signal
    def stop(self) -> None:
        """Stop gracefully: cancel running children, start no more, keep what finished."""
        self._stop = True
        if self._progress is not None:
            self._progress.phase = "stopping"
        for task in self._running.values():
            if not task.done():
                task.cancel()

    @workflow.signal
    def retry_failed(self, edits: dict[str, dict[str, Any]]) -> None:
        """Re-run the failed children; `edits` maps a child's index (as text) to new parameters."""
        self._retry = edits

    @workflow.signal
    def finish(self) -> None:
        self._finish = True
