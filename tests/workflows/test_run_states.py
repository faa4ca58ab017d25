"""Final, true states through a real Temporal server: a cancelled or terminated batch and its children as the
batch view shows them (also to a process that never watched it), and the true attempt count of a failed stage."""

from __future__ import annotations

import time
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError, CancelledError

from core.accounts import User
from orchestration.activity_errors import INVALID_INPUT
from orchestration.contracts import BatchItem, BatchRequest, StageResult, TrainInput, TrainRequest
from orchestration.service import TrainEasyService
from orchestration.workflows.policy import RETRY
from tests.helpers import classification_csv, eventually, finished_run, running_workers

FINAL = {WorkflowExecutionStatus.CANCELED: "cancelled", WorkflowExecutionStatus.COMPLETED: "completed"}


@pytest.fixture
def user():
    return User(f"states_{uuid.uuid4().hex[:6]}")


@activity.defn(name="fit_model")
def slow_fit(inp: TrainInput) -> StageResult:
    """A fit of 60 s that heartbeats its steps and stops when cancelled (the real worker has one training slot,
    so a second child's fit waits in the queue, scheduled but never started)."""
    for step in range(600):
        activity.heartbeat({"step": step, "of": 600})
        if activity.is_cancelled():
            raise CancelledError("fit cancelled")
        time.sleep(0.1)
    return StageResult(activity.info().attempt)


async def _batch_with_one_fitting_one_queued_one_waiting(service, user):
    ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=300))
    items = [BatchItem("logistic_regression"), BatchItem("gaussian_nb"), BatchItem("decision_tree_classifier")]
    batch_id = await service.start_batch(user, BatchRequest(user.name, ds.dataset_id, "bought", items, max_parallel=2))

    async def fitting_and_queued():
        view = await service.get_batch(user, batch_id)
        kids = view.progress.children if view.progress else []
        running = [c for c in kids if c.status == "running"]
        return len(running) == 2 and any(p > 40 for p in view.child_percent.values()) and view

    view = await eventually(fitting_and_queued, timeout=90)
    assert view.progress.children[2].status == "pending", "the third configuration waits for a slot"
    return batch_id


async def _closed(service, user, batch_id, timeout=60):
    async def settled():
        view = await service.get_batch(user, batch_id)
        return view if not view.running and not view.settling else None

    return await eventually(settled, timeout=timeout, interval=0.5)


async def _assert_children_true(client, view) -> None:
    for child in view.progress.children:
        assert child.status in ("cancelled", "completed"), (child.index, child.status)
        if child.run_id is not None:
            desc = await client.get_workflow_handle(child.run_id).describe()
            assert FINAL.get(desc.status) == child.status, (child.index, child.status, desc.status)


async def test_a_cancelled_batch_shows_every_child_final_and_true(client, settings, service, user):
    async with running_workers(client, settings, {"fit_model": slow_fit}):
        batch_id = await _batch_with_one_fitting_one_queued_one_waiting(service, user)
        await service.cancel_batch(user, batch_id)
        view = await _closed(service, user, batch_id)
        # another process (a reload on another server, a restarted app) sees the same, without having watched
        fresh = await TrainEasyService(client, settings).get_batch(user, batch_id)
    for shown in (view, fresh):
        assert shown.progress is not None
        assert shown.status == "cancelled" and shown.progress.phase == "cancelled"
        assert [c.status for c in shown.progress.children] == ["cancelled"] * 3
        assert shown.progress.children[2].run_id is None, "the waiting configuration never started"
        await _assert_children_true(client, shown)
    # the batch closed after its children, having recorded how each one ended (it no longer closes at the first)
    batch = await client.get_workflow_handle(batch_id).describe()
    for child in view.progress.children[:2]:
        assert (await client.get_workflow_handle(child.run_id).describe()).close_time <= batch.close_time
    assert view.temporal_url is not None and view.temporal_url.endswith(f"/namespaces/{settings.namespace}/workflows/{batch_id}")


async def test_a_terminated_batch_shows_its_children_as_temporal_has_them(client, settings, service, user):
    """Terminating runs no workflow code: the batch's own record keeps its children "running". The view reads
    each one from Temporal instead (the parent close policy cancels them)."""
    async with running_workers(client, settings, {"fit_model": slow_fit}):
        batch_id = await _batch_with_one_fitting_one_queued_one_waiting(service, user)
        await client.get_workflow_handle(batch_id).terminate("test")
        recorded = await client.get_workflow_handle(batch_id).query("progress")
        assert [c["status"] for c in recorded["children"]] == ["running", "running", "pending"]
        view = await _closed(service, user, batch_id)
    assert view.status == "terminated"
    assert [c.status for c in view.progress.children] == ["cancelled"] * 3
    await _assert_children_true(client, view)


async def test_a_failed_stage_shows_how_many_times_it_ran(client, settings, service, user):
    @activity.defn(name="fit_model")
    def broken_fit(inp: TrainInput) -> StageResult:
        if inp.request.params.get("C") == 2.0 and activity.info().attempt == 2:
            raise ApplicationError("n_neighbors is larger than the training rows", type=INVALID_INPUT, non_retryable=True)
        raise RuntimeError("the fit process lost its memory")

    async with running_workers(client, settings, {"fit_model": broken_fit}):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=200))
        request = TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression", {"C": 0.5}, seed=7, test_size=0.25)
        exhausted = await service.start_training(user, request)
        refused = await service.start_training(
            user, TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression", {"C": 2.0}, cv_folds=3)
        )
        exhausted_view = await finished_run(service, user, exhausted, timeout=120)
        refused_view = await finished_run(service, user, refused, timeout=120)
    fit = next(s for s in exhausted_view.stages if s.name == "fit")
    assert (exhausted_view.status, fit.status, fit.attempt) == ("failed", "failed", RETRY.maximum_attempts)
    assert exhausted_view.attempt == RETRY.maximum_attempts, "not 'Attempt 1' after five attempts"
    fit = next(s for s in refused_view.stages if s.name == "fit")
    assert (refused_view.status, fit.status, fit.attempt) == ("failed", "failed", 2), "refused on its second attempt"
    assert refused_view.attempt == 2
    # the parameters the run used, read back from Temporal
    req = exhausted_view.request
    assert req is not None and (req.params["C"], req.seed, req.test_size, req.cv_folds, req.target) == (0.5, 7, 0.25, 0, "bought")
    assert refused_view.request is not None and refused_view.request.cv_folds == 3
