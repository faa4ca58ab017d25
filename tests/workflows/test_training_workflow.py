"""Training through a real Temporal dev server and the real worker code: the whole run, retries, failures."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus

from core.accounts import User
from orchestration.contracts import StageResult, TrainInput, TrainRequest
from orchestration.errors import NotFound, UserError
from orchestration.training_activities import TrainingActivities
from orchestration.workflows import TrainingWorkflow
from orchestration.workflows.training import SHORT_STAGE_HEARTBEAT
from tests.helpers import classification_csv, eventually, finished_run, regression_csv, running_workers


@pytest.fixture
def users():
    """Fresh user names per test: the dev server is shared by the whole session."""
    tag = uuid.uuid4().hex[:6]
    return User(f"alice_{tag}"), User(f"bob_{tag}")


async def test_training_run_completes_with_metrics_and_saved_model(client, settings, service, users):
    ALICE, BOB = users
    async with running_workers(client, settings):
        ds = await service.upload_dataset(ALICE, "shop.csv", classification_csv())
        run_id = await service.start_training(
            ALICE, TrainRequest(ALICE.name, ds.dataset_id, "bought", "random_forest_classifier", {"n_estimators": 20})
        )
        view = await finished_run(service, ALICE, run_id)
        # the same progress the UI shows is what the CLI's `temporal workflow query --name progress` reads
        queried = await client.get_workflow_handle(run_id).query(TrainingWorkflow.progress)
    assert view.status == "completed", view.error
    assert view.percent == 100.0
    assert [s.status for s in view.stages] == ["done", "done", "skipped", "done", "done", "done"]
    assert 0.5 <= view.metrics["accuracy"] <= 1.0
    assert view.facts.train_rows + view.facts.test_rows == 200
    assert queried.metrics == view.metrics
    record = service.registry.by_run(ALICE.name, run_id)
    assert record is not None and record.version == 1 and record.card["metrics"] == view.metrics
    assert service.registry.model_file(record).is_file()


async def test_regression_run_reports_regression_metrics(client, settings, service, users):
    ALICE, BOB = users
    async with running_workers(client, settings):
        ds = await service.upload_dataset(ALICE, "reg.csv", regression_csv())
        run_id = await service.start_training(ALICE, TrainRequest(ALICE.name, ds.dataset_id, "y", "linear_regression"))
        view = await finished_run(service, ALICE, run_id)
    assert view.status == "completed", view.error
    assert view.metrics["r2"] > 0.9 and view.metrics["rmse"] < 1.0


async def test_failing_activity_is_retried_with_backoff(client, settings, service, users):
    ALICE, BOB = users
    real = TrainingActivities
    calls = []
    seen = threading.Event()

    @activity.defn(name="fit_model")
    def flaky_fit(inp: TrainInput) -> StageResult:
        calls.append(activity.info().attempt)
        if activity.info().attempt == 1:
            raise RuntimeError("worker lost its disk for a moment")
        seen.wait(15)  # the second attempt waits until the test has seen the first one's error
        return real(service.storage).fit_model(inp)

    async with running_workers(client, settings, {"fit_model": flaky_fit}):
        ds = await service.upload_dataset(ALICE, "shop.csv", classification_csv())
        run_id = await service.start_training(ALICE, TrainRequest(ALICE.name, ds.dataset_id, "bought", "logistic_regression"))

        async def retrying():
            view = await service.get_run(ALICE, run_id)
            return view if view.attempt == 2 else None

        retry_view = await eventually(retrying, timeout=60, interval=0.2)
        seen.set()
        view = await finished_run(service, ALICE, run_id)
    # the error arrives encrypted (encoded failure attributes); the run view shows the real message
    assert retry_view.last_failure == "worker lost its disk for a moment"
    assert view.status == "completed", view.error
    assert calls == [1, 2]
    assert next(s for s in view.stages if s.name == "fit").attempt == 2


async def test_bad_data_fails_fast_with_a_plain_message(client, settings, service, users):
    ALICE, BOB = users
    async with running_workers(client, settings):
        ds = await service.upload_dataset(ALICE, "shop.csv", classification_csv())
        # a regression model on a yes/no target: refused at launch, from the dataset's profile
        with pytest.raises(UserError, match="predicts numbers"):
            await service.start_training(ALICE, TrainRequest(ALICE.name, ds.dataset_id, "bought", "linear_regression"))
        # a class of a single row, which the profile cannot see: refused by the worker's load stage, not retried
        odd = await service.upload_dataset(ALICE, "odd.csv", classification_csv() + b"40,50.0,nice,maybe\n")
        run_id = await service.start_training(ALICE, TrainRequest(ALICE.name, odd.dataset_id, "bought", "logistic_regression"))
        view = await finished_run(service, ALICE, run_id)
    assert view.status == "failed"
    assert "never see that class in training" in view.error
    assert [s.status for s in view.stages][:2] == ["failed", "pending"]
    assert next(s for s in view.stages if s.name == "load").attempt == 1


async def test_request_validation_names_the_field(client, settings, service, users):
    ALICE, BOB = users
    async with running_workers(client, settings):
        ds = await service.upload_dataset(ALICE, "shop.csv", classification_csv())
    did = ds.dataset_id
    with pytest.raises(UserError, match="n_estimators"):
        await service.start_training(
            ALICE, TrainRequest(ALICE.name, did, "bought", "random_forest_classifier", {"n_estimators": 100000})
        )
    with pytest.raises(UserError, match="unknown parameter"):
        await service.start_training(ALICE, TrainRequest(ALICE.name, did, "bought", "logistic_regression", {"evil": 1}))
    with pytest.raises(UserError, match="target column"):
        await service.start_training(ALICE, TrainRequest(ALICE.name, did, "nope", "logistic_regression"))
    with pytest.raises(UserError, match="test split"):
        await service.start_training(ALICE, TrainRequest(ALICE.name, did, "bought", "logistic_regression", test_size=0.9))
    with pytest.raises(NotFound):  # bob cannot train on alice's dataset
        await service.start_training(BOB, TrainRequest(BOB.name, did, "bought", "logistic_regression"))


async def test_another_users_run_is_not_found(client, settings, service, users):
    ALICE, BOB = users
    async with running_workers(client, settings):
        ds = await service.upload_dataset(ALICE, "shop.csv", classification_csv())
        # a request claiming to be bob's is still owned by the acting user
        run_id = await service.start_training(ALICE, TrainRequest(BOB.name, ds.dataset_id, "bought", "logistic_regression"))
        await finished_run(service, ALICE, run_id)
    assert run_id.startswith(f"train-{ALICE.name}-")
    for bad_id in (run_id, run_id.replace(ALICE.name, BOB.name), f"train-{ALICE.name}-../../etc", "'; DROP", ""):
        with pytest.raises(NotFound):
            await service.get_run(BOB, bad_id)
    with pytest.raises(NotFound):
        await service.cancel_run(BOB, run_id)
    assert await eventually(lambda: _ids(service, ALICE), timeout=20) == [run_id]
    assert await _ids(service, BOB) == []
    assert service.list_datasets(BOB) == []


async def _ids(service, user):
    return [r.run_id for r in await service.list_runs(user)]


async def test_run_without_worker_says_waiting_for_a_worker(client, settings, service, users):
    ALICE, BOB = users
    async with running_workers(client, settings):
        ds = await service.upload_dataset(ALICE, "shop.csv", classification_csv())
    run_id = await service.start_training(ALICE, TrainRequest(ALICE.name, ds.dataset_id, "bought", "logistic_regression"))
    view = await service.get_run(ALICE, run_id)
    assert view.status == "running" and view.waiting_for_worker
    async with running_workers(client, settings):  # a worker arrives: the run proceeds
        view = await finished_run(service, ALICE, run_id)
    assert view.status == "completed" and not view.waiting_for_worker


async def test_cancel_stops_the_fit_within_seconds(client, settings, service, users):
    ALICE, BOB = users
    async with running_workers(client, settings):
        ds = await service.upload_dataset(ALICE, "big.csv", classification_csv(rows=20000))
        run_id = await service.start_training(
            ALICE, TrainRequest(ALICE.name, ds.dataset_id, "bought", "random_forest_classifier", {"n_estimators": 500})
        )

        async def fitting():
            view = await service.get_run(ALICE, run_id)
            return view.stage == "fit" and (view.live.step or 0) >= 1

        await eventually(fitting, timeout=120)
        await service.cancel_run(ALICE, run_id)
        loop = asyncio.get_running_loop()
        asked = loop.time()
        view = await finished_run(service, ALICE, run_id)
        took = loop.time() - asked
    assert view.status == "cancelled"
    assert took < 15, f"cancel took {took:.1f}s"
    desc = await client.get_workflow_handle(run_id).describe()
    assert desc.status == WorkflowExecutionStatus.CANCELED
    assert next(s for s in view.stages if s.name == "fit").status == "cancelled"


async def test_data_tasks_fail_fast_when_no_worker_is_running(service, users):
    ALICE, _ = users
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UserError, match="No worker process is running"):
        await service.upload_dataset(ALICE, "shop.csv", classification_csv())
    assert loop.time() - started < 5
    assert not any(service.storage.upload_dir(ALICE.name).glob("*")), "the staged upload is removed"


async def test_cancel_during_a_short_stage_is_not_lost(client, settings, service, users):
    ALICE, _ = users
    real = TrainingActivities

    @activity.defn(name="evaluate_model")
    def slow_evaluate(inp: TrainInput) -> StageResult:
        time.sleep(4)  # a stage without heartbeats: it never hears the cancel itself
        return real(service.storage).evaluate_model(inp)

    async with running_workers(client, settings, {"evaluate_model": slow_evaluate}):
        ds = await service.upload_dataset(ALICE, "shop.csv", classification_csv())
        run_id = await service.start_training(ALICE, TrainRequest(ALICE.name, ds.dataset_id, "bought", "logistic_regression"))

        async def evaluating():
            return (await service.get_run(ALICE, run_id)).stage == "evaluate"

        await eventually(evaluating, timeout=60, interval=0.1)
        await service.cancel_run(ALICE, run_id)
        view = await finished_run(service, ALICE, run_id, timeout=30)
        await asyncio.sleep(5)  # let the abandoned evaluate finish: nothing may follow it
    assert view.status == "cancelled"
    # the stage never heard the cancel (its first heartbeat would come after a second) and finished; the run
    # stops after it: the save stage never runs
    statuses = {s.name: s.status for s in view.stages}
    assert (statuses["evaluate"], statuses["save"]) == ("done", "cancelled")
    assert service.registry.by_run(ALICE.name, run_id) is None, "a cancelled run registers no model"


async def test_a_short_stage_whose_completion_never_arrives_is_retried_after_its_heartbeat_timeout(
    client, settings, service, users
):
    """What a Temporal outage does to a finishing stage: the worker cannot report its completion. The server
    must retry the stage after its heartbeat timeout (SHORT_STAGE_HEARTBEAT), not after its 10-minute limit."""
    ALICE, _ = users
    real = TrainingActivities
    attempts: list[int] = []

    @activity.defn(name="preprocess_split")
    def silent_then_fine(inp: TrainInput) -> StageResult:
        attempts.append(activity.info().attempt)
        if len(attempts) == 1:
            time.sleep(SHORT_STAGE_HEARTBEAT.total_seconds() + 6)  # no heartbeat, no answer in time: as if lost
        return real(service.storage, settings).preprocess_split(inp)

    async with running_workers(client, settings, {"preprocess_split": silent_then_fine}):
        ds = await service.upload_dataset(ALICE, "shop.csv", classification_csv())
        run_id = await service.start_training(ALICE, TrainRequest(ALICE.name, ds.dataset_id, "bought", "logistic_regression"))
        view = await finished_run(service, ALICE, run_id, timeout=120)
    assert view.status == "completed", view.error
    # the retry cannot run on the run's own worker while the lost attempt still holds its slot: it goes to the
    # shared queue (workflows/training.py STICKY_STAGES), where Temporal counts it as a new activity's attempt 1
    assert attempts in ([1, 2], [1, 1])
    assert next(s for s in view.stages if s.name == "preprocess").attempt == 2
