"""Review findings through a real Temporal server and the real worker code: a run that says "cancelled" leaves
no model (a batch's child neither), a cancelled batch tags the best model it stars, and a class the split can
leave out of training is refused at once, in plain words, without retries."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from temporalio import activity
from temporalio.exceptions import CancelledError

from core.accounts import User
from core.storage import Storage
from orchestration.contracts import BatchItem, BatchRequest, StageResult, TrainInput, TrainRequest
from orchestration.training_activities import TrainingActivities
from tests.helpers import classification_csv, eventually, finished_run, running_workers

SAVE_SECONDS = 3.0


@pytest.fixture
def user():
    return User(f"fix_{uuid.uuid4().hex[:6]}")


def slow_save(settings, events: dict[str, list[float]]):
    """The real save_model, after a pause in which the test cancels: it registers the model after the cancel."""
    real = TrainingActivities(Storage(settings.home), settings)

    @activity.defn(name="save_model")
    def save_model(inp: TrainInput) -> StageResult:
        events.setdefault("started", []).append(time.monotonic())
        time.sleep(SAVE_SECONDS)
        try:
            return real.register_model(inp)
        finally:
            events.setdefault("ended", []).append(time.monotonic())

    return save_model


async def _until(events: dict, key: str, count: int = 1, timeout: float = 120) -> None:
    async def seen():
        return len(events.get(key, [])) >= count

    await eventually(seen, timeout=timeout, interval=0.1)


async def test_a_run_cancelled_while_saving_leaves_no_model(client, settings, service, user):
    events: dict[str, list[float]] = {}
    async with running_workers(client, settings, {"save_model": slow_save(settings, events)}):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=200))
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", "gaussian_nb"))
        await _until(events, "started")
        await service.cancel_run(user, run_id)
        view = await finished_run(service, user, run_id, timeout=60)
        await _until(events, "ended", timeout=30)  # the save has finished whatever the run said
    assert view.status == "cancelled", view.error
    assert next(s for s in view.stages if s.name == "save").status == "cancelled"
    assert service.registry.by_run(user.name, run_id) is None, "a cancelled run left a registered model"
    assert view.facts.model_id is None
    assert service.list_models(user) == []


@activity.defn(name="fit_model")
def fit_or_wait(inp: TrainInput) -> StageResult:
    """Gaussian NB fits for real; any other model fits until it is cancelled (a child still running)."""
    if inp.request.model == "gaussian_nb":
        return _REAL[0].fit_model(inp)
    for step in range(1200):
        activity.heartbeat({"step": step, "of": 1200})
        if activity.is_cancelled():
            raise CancelledError("fit cancelled")
        time.sleep(0.1)
    return StageResult(activity.info().attempt)


_REAL: list[TrainingActivities] = []


async def _closed_batch(service, user, batch_id, timeout=90):
    async def settled():
        view = await service.get_batch(user, batch_id)
        return view if not view.running and not view.settling else None

    return await eventually(settled, timeout=timeout, interval=0.3)


async def test_a_batch_child_cancelled_while_saving_leaves_no_model(client, settings, service, user):
    events: dict[str, list[float]] = {}
    async with running_workers(client, settings, {"save_model": slow_save(settings, events)}):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=200))
        batch_id = await service.start_batch(
            user, BatchRequest(user.name, ds.dataset_id, "bought", [BatchItem("gaussian_nb")], max_parallel=1)
        )
        await _until(events, "started")
        await service.cancel_batch(user, batch_id)
        view = await _closed_batch(service, user, batch_id)
        await _until(events, "ended", timeout=30)
    (child,) = view.progress.children
    assert (view.status, child.status) == ("cancelled", "cancelled")
    assert service.registry.by_run(user.name, child.run_id) is None, "a cancelled child left a registered model"
    assert view.leaderboard() == []


async def test_a_cancelled_batch_tags_the_best_model_it_stars(client, settings, service, user):
    _REAL[:] = [TrainingActivities(Storage(settings.home), settings)]
    async with running_workers(client, settings, {"fit_model": fit_or_wait}):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=200))
        items = [BatchItem("gaussian_nb"), BatchItem("logistic_regression")]
        batch_id = await service.start_batch(user, BatchRequest(user.name, ds.dataset_id, "bought", items, max_parallel=1))

        async def first_done_second_fitting():
            v = await service.get_batch(user, batch_id)
            kids = v.progress.children if v.progress else []
            return kids and kids[0].status == "completed" and kids[1].status == "running"

        await eventually(first_done_second_fitting, timeout=120)
        await service.cancel_batch(user, batch_id)
        view = await _closed_batch(service, user, batch_id)
    nb, lr = view.progress.children
    assert (view.status, nb.status, lr.status) == ("cancelled", "completed", "cancelled")
    (row,) = view.leaderboard()
    assert row["run_id"] == nb.run_id and row["best"], "the finished child is the batch's best"
    model = service.registry.by_run(user.name, nb.run_id)
    assert model is not None and f"best of {batch_id}" in model.tags, "starred, so tagged: retention keeps it"


def _one_row_class_csv() -> bytes:
    return pd.DataFrame({"x": np.arange(11.0), "y": ["p"] * 10 + ["q"]}).to_csv(index=False).encode()


@pytest.mark.parametrize("model", ["logistic_regression", "gaussian_nb"])
async def test_a_class_the_split_can_leave_out_is_refused_at_once(client, settings, service, user, model):
    """Ten 'p', one 'q' last, seed 11, 20% test rows: refused by the load stage on its first attempt, in plain
    words (it used to be retried five times, ~16 s, and fail with scikit-learn's text; Gaussian NB 'completed')."""
    async with running_workers(client, settings):
        ds = await service.upload_dataset(user, "pq.csv", _one_row_class_csv())
        report = await service.check_data(user, ds.dataset_id, "y", model, {}, 0, 0.2)
        assert [f.message for f in report.findings if f.level == "error"] == [
            "Class 'q' has only 1 row, and the 20% test split may take it: the model would then never see that class "
            "in training. Add rows of that class, or remove its row from the file (or pick another target)."
        ]
        started = time.monotonic()
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "y", model, {}, 11, 0.2))
        view = await finished_run(service, user, run_id, timeout=60)
        took = time.monotonic() - started
    assert view.status == "failed"
    assert view.error.startswith("Class 'q' has only 1 row"), view.error
    assert view.attempt == 1 and next(s for s in view.stages if s.name == "load").status == "failed"
    assert took < 10, f"refused after {took:.1f} s"
    assert service.registry.by_run(user.name, run_id) is None


@activity.defn(name="fit_model")
def long_fit(inp: TrainInput) -> StageResult:
    """A fit of up to 60 s that heartbeats its steps (one every 2 s) and stops when cancelled."""
    for step in range(30):
        activity.heartbeat({"step": step, "of": 30})
        for _ in range(20):
            if activity.is_cancelled():
                raise CancelledError("fit cancelled")
            time.sleep(0.1)
    return StageResult(activity.info().attempt)


async def test_the_run_page_keeps_the_stage_while_the_worker_holding_the_run_is_gone(client, settings, service, user):
    """The worker that runs the workflow stops while the fit goes on on another: the run is shown at its fit,
    being re-read, not back at "load" with every stage pending and waiting for a worker; a process that never
    read the run (an app just restarted) reads the same stage from the activity a worker is running."""
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from core.datasets import ingest_csv
    from orchestration.activities import activity_list
    from orchestration.binding import BindInputsToWorkflow
    from orchestration.service import TrainEasyService
    from orchestration.workflows import TrainingWorkflow

    training, _ = activity_list(Storage(settings.home), settings)
    training = [long_fit if getattr(fn, "__name__", "") == "fit_model" else fn for fn in training]
    runs_workflows = Worker(client, task_queue=settings.task_queue, workflows=[TrainingWorkflow])
    runs_activities = Worker(
        client,
        task_queue=settings.task_queue,
        activities=training,
        activity_executor=ThreadPoolExecutor(2),
        interceptors=[BindInputsToWorkflow()],
    )
    info = ingest_csv(service.storage, user.name, classification_csv(rows=200), "shop.csv", 1 << 22)
    tasks = [asyncio.create_task(w.run()) for w in (runs_workflows, runs_activities)]
    try:
        run_id = await service.start_training(
            user, TrainRequest(user.name, info.dataset_id, "bought", "random_forest_classifier", {"n_estimators": 5})
        )

        async def fitting():
            view = await service.get_run(user, run_id)
            return view if view.stage == "fit" and view.live.step and view.live.step >= 1 else None

        before = await eventually(fitting, timeout=90)
        await runs_workflows.shutdown()  # the worker holding the run stops; the fit goes on on the other
        view = await service.get_run(user, run_id)
        fresh = await TrainEasyService(client, settings).get_run(user, run_id)
    finally:
        await runs_activities.shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.get_workflow_handle(run_id).terminate()
    for read in (view, fresh):
        assert read.running and read.stage == "fit", read.stage
        assert [s.status for s in read.stages[:4]] == ["done", "done", "skipped", "running"]
        assert read.rereading and not read.waiting_for_worker
    assert view.percent >= before.percent
