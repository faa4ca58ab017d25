"""Batches through a real Temporal server: parallel children, the cap, failures, retry, stop, cancel."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus

from core.accounts import User
from orchestration.contracts import BatchItem, BatchRequest, StageResult, TrainInput
from orchestration.errors import NotFound, UserError
from orchestration.training_activities import TrainingActivities
from tests.helpers import (
    classification_csv,
    eventually,
    running_workers,
    start_worker_process,
    stop_processes,
    wait_for_workers,
)


@pytest.fixture
def user():
    return User(f"batch_{uuid.uuid4().hex[:6]}")


async def _settled(service, user, batch_id, timeout=240):
    async def done():
        view = await service.get_batch(user, batch_id)
        return view if view.status != "running" or (view.progress and view.progress.phase == "awaiting") else None

    return await eventually(done, timeout=timeout, interval=0.5)


@asynccontextmanager
async def two_worker_processes(client, settings):
    """Two training slots, in two real worker processes (one process holds one worker per queue)."""
    address = client.service_client.config.target_host
    procs = [start_worker_process(settings, address) for _ in range(2)]
    try:
        await wait_for_workers(client, settings, 2)
        yield procs
    finally:
        stop_processes(*procs)


async def _intervals(client, run_ids):
    descs = [await client.get_workflow_handle(r).describe() for r in run_ids]
    return sorted((d.start_time, d.close_time) for d in descs)


async def test_batch_on_two_worker_processes_ranks_and_tags_the_best(client, settings, service, user):
    async with two_worker_processes(client, settings):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=3000))
        items = [
            BatchItem("random_forest_classifier", {"n_estimators": 60}),
            BatchItem("extra_trees_classifier", {"n_estimators": 80}),
            BatchItem("gradient_boosting_classifier", {"n_estimators": 60}),
            BatchItem("random_forest_classifier", {"n_estimators": 60, "max_depth": 3}),
        ]
        assert service.default_parallelism() == 2
        batch_id = await service.start_batch(user, BatchRequest(user.name, ds.dataset_id, "bought", items, max_parallel=2))
        view = await _settled(service, user, batch_id)
    assert view.status == "completed"
    children = view.progress.children
    assert [c.status for c in children] == ["completed"] * 4
    assert len({c.worker for c in children}) == 2, "both worker processes trained children"
    board = view.leaderboard()
    scores = [row["balanced_accuracy"] for row in board]
    assert scores == sorted(scores, reverse=True) and board[0]["best"]
    best = service.registry.by_run(user.name, view.progress.best_run_id)
    assert best is not None and f"best of {batch_id}" in best.tags
    # children are ordinary runs of the user, with owner search attributes of their own
    run_ids = {r.run_id for r in await eventually(lambda: service.list_runs(user), timeout=20)}
    assert {c.run_id for c in children} <= run_ids
    assert (await service.get_run(user, children[0].run_id)).status == "completed"


async def test_concurrency_cap_is_respected(client, settings, service, user):
    async with two_worker_processes(client, settings):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=400))
        items = [BatchItem("logistic_regression"), BatchItem("gaussian_nb"), BatchItem("decision_tree_classifier")]
        batch_id = await service.start_batch(user, BatchRequest(user.name, ds.dataset_id, "bought", items, max_parallel=1))
        view = await _settled(service, user, batch_id)
    assert view.status == "completed"
    spans = await _intervals(client, [c.run_id for c in view.progress.children])
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, "with max_parallel=1 no two children overlap"


async def test_a_failing_child_does_not_fail_the_batch_and_retry_failed_reruns_only_it(client, settings, service, user):
    real = TrainingActivities

    @activity.defn(name="fit_model")
    def fit_refusing_default_smoothing(inp: TrainInput) -> StageResult:
        if inp.request.model == "gaussian_nb" and inp.request.params["var_smoothing"] == 1e-9:
            from temporalio.exceptions import ApplicationError

            raise ApplicationError("var_smoothing too small for this data", type="InvalidInput", non_retryable=True)
        return real(service.storage).fit_model(inp)

    async with running_workers(client, settings, {"fit_model": fit_refusing_default_smoothing}):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=300))
        items = [BatchItem("logistic_regression"), BatchItem("gaussian_nb"), BatchItem("decision_tree_classifier")]
        batch_id = await service.start_batch(user, BatchRequest(user.name, ds.dataset_id, "bought", items, max_parallel=2))
        view = await _settled(service, user, batch_id)
        assert view.status == "running" and view.progress.phase == "awaiting"
        assert [c.status for c in view.progress.children] == ["completed", "failed", "completed"]
        assert "var_smoothing too small" in view.progress.children[1].error
        first_runs = [c.run_id for c in view.progress.children]

        with pytest.raises(UserError, match="did not fail"):
            await service.retry_failed(user, batch_id, {0: {}})
        await service.retry_failed(user, batch_id, {1: {"var_smoothing": 1e-8}})

        async def closed():
            v = await service.get_batch(user, batch_id)
            return v if v.status != "running" else None

        view = await eventually(closed, timeout=120)
    children = view.progress.children
    assert view.status == "completed" and [c.status for c in children] == ["completed"] * 3
    assert children[1].params["var_smoothing"] == 1e-8 and children[1].attempts == 2
    assert [c.run_id for c in children][::2] == first_runs[::2], "finished children were not re-run"
    assert children[1].run_id != first_runs[1]


async def test_stop_keeps_finished_children_and_the_best(client, settings, service, user):
    async with two_worker_processes(client, settings):
        ds = await service.upload_dataset(user, "big.csv", classification_csv(rows=20000))
        items = [BatchItem("gaussian_nb"), BatchItem("random_forest_classifier", {"n_estimators": 500})]
        batch_id = await service.start_batch(user, BatchRequest(user.name, ds.dataset_id, "bought", items, max_parallel=2))

        async def nb_done_rf_fitting():
            v = await service.get_batch(user, batch_id)
            kids = v.progress.children if v.progress else []
            return (
                kids
                and kids[0].status == "completed"
                and kids[1].status == "running"
                and v.child_percent.get(kids[1].run_id, 0) > 20
            )

        await eventually(nb_done_rf_fitting, timeout=180)
        await service.stop_batch(user, batch_id)
        view = await _settled(service, user, batch_id, timeout=60)
    assert view.status == "completed"
    assert [c.status for c in view.progress.children] == ["completed", "cancelled"]
    assert view.progress.best_run_id == view.progress.children[0].run_id
    rf = await client.get_workflow_handle(view.progress.children[1].run_id).describe()
    assert rf.status == WorkflowExecutionStatus.CANCELED
    assert "best of" in " ".join(service.registry.by_run(user.name, view.progress.best_run_id).tags)


async def test_cancelling_a_batch_cancels_its_children_within_seconds(client, settings, service, user):
    other = User(f"other_{uuid.uuid4().hex[:6]}")
    async with two_worker_processes(client, settings):
        ds = await service.upload_dataset(user, "big.csv", classification_csv(rows=20000))
        items = [
            BatchItem("random_forest_classifier", {"n_estimators": 500}),
            BatchItem("extra_trees_classifier", {"n_estimators": 500}),
            BatchItem("random_forest_classifier", {"n_estimators": 400}),
        ]
        batch_id = await service.start_batch(user, BatchRequest(user.name, ds.dataset_id, "bought", items, max_parallel=2))

        async def two_fitting():
            v = await service.get_batch(user, batch_id)
            return v.progress and sum(p > 20 for p in v.child_percent.values()) == 2

        await eventually(two_fitting, timeout=180)
        with pytest.raises(NotFound):
            await service.cancel_batch(other, batch_id)
        view = await service.get_batch(user, batch_id)
        started = [c.run_id for c in view.progress.children if c.run_id]
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await service.cancel_batch(user, batch_id)

        async def all_cancelled():
            statuses = [(await client.get_workflow_handle(r).describe()).status for r in [batch_id, *started]]
            return all(s == WorkflowExecutionStatus.CANCELED for s in statuses)

        await eventually(all_cancelled, timeout=60)
        took = loop.time() - asked
    assert len(started) == 2, "the third configuration never started"
    assert took < 20, f"cancel took {took:.1f}s"
