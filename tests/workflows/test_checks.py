"""Limits the data sets, through a real dev server and the real workers: refused at once with a plain
message, by the service before anything starts and by the load stage (one attempt) behind it; the data check
says the same and is asked once per setting it reads; numeric identifiers stay out of the features."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from temporalio.api.enums.v1 import EventType

from core.accounts import User
from orchestration.contracts import TrainInput, TrainRequest, run_attributes
from orchestration.errors import UserError
from orchestration.evaluation_view import Evaluation
from orchestration.workflows import TrainingWorkflow
from tests.helpers import classification_csv, eventually, finished_run, running_workers

JARGON = ("InvalidInput", "Error:", "activity", "Activity", "workflow", "Heartbeat", "RPC")
KNN_TOO_MANY = "'n_neighbors' is 50, but each fit sees only 24 rows (30 rows with a target, less 6 test rows)"


@pytest.fixture
def alice():
    return User(f"alice_{uuid.uuid4().hex[:6]}")


async def _ids(client, user: User, kind: str) -> set[str]:
    return {wf.id async for wf in client.list_workflows(f"Owner = '{user.name}' AND RunKind = '{kind}'")}


async def _activity_attempts(client, run_id: str) -> list[int]:
    """The attempt number of every stage the run started, from its history (one stage, once: [1]); the
    clean-up of a failed run's scratch files is not a stage."""
    scheduled: dict[int, str] = {}
    attempts = []
    async for event in client.get_workflow_handle(run_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if scheduled.get(started.scheduled_event_id) != "discard_scratch":
                attempts.append(started.attempt)
    return attempts


async def test_knn_with_too_many_neighbours_is_refused_at_launch_with_nothing_started(client, settings, service, alice):
    async with running_workers(client, settings):
        ds = await service.upload_dataset(alice, "small.csv", classification_csv(rows=30))
        started = time.monotonic()
        with pytest.raises(UserError) as refused:
            await service.start_training(
                alice, TrainRequest(alice.name, ds.dataset_id, "bought", "knn_classifier", {"n_neighbors": 50})
            )
    assert time.monotonic() - started < 2
    assert str(refused.value).startswith(KNN_TOO_MANY) and str(refused.value).endswith("Use at most 24, or more rows.")
    assert (await service.usage(alice)).runs_in_flight == 0
    await asyncio.sleep(1.0)  # visibility is eventually consistent: give a wrongly started run time to show
    assert await _ids(client, alice, "train") == set()


async def test_the_load_stage_refuses_it_too_in_one_attempt_with_a_plain_message(client, settings, service, alice):
    """Behind the service (a request from elsewhere, an older client): fails at once, no retries."""
    async with running_workers(client, settings):
        ds = await service.upload_dataset(alice, "small.csv", classification_csv(rows=30))
        run_id = f"train-{alice.name}-{uuid.uuid4().hex}"
        request = TrainRequest(alice.name, ds.dataset_id, "bought", "knn_classifier", {"n_neighbors": 50})
        started = time.monotonic()
        await client.start_workflow(
            TrainingWorkflow.run,
            TrainInput(run_id, request),
            id=run_id,
            task_queue=settings.task_queue,
            search_attributes=run_attributes(alice.name, "train", ds.dataset_id, "knn_classifier"),
        )
        view = await finished_run(service, alice, run_id, timeout=60)
        elapsed = time.monotonic() - started
    assert view.status == "failed"
    assert elapsed < 10, f"refused at once, not retried (~15 s for 5 attempts): {elapsed:.1f} s"
    assert await _activity_attempts(client, run_id) == [1]
    assert [s.status for s in view.stages][:2] == ["failed", "pending"]
    assert view.error.startswith(KNN_TOO_MANY) and not any(w in view.error for w in JARGON), view.error


async def test_folds_beyond_the_smallest_class_are_refused_by_the_load_stage_with_the_real_counts(
    client, settings, service, alice
):
    """The service knows the rows, not the classes: the load stage counts them and refuses at once."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "y": ["common"] * 56 + ["rare"] * 4})
    async with running_workers(client, settings):
        ds = await service.upload_dataset(alice, "rare.csv", df.to_csv(index=False).encode())
        report = await service.check_data(alice, ds.dataset_id, "y", "logistic_regression", {}, cv_folds=5)
        run_id = await service.start_training(
            alice, TrainRequest(alice.name, ds.dataset_id, "y", "logistic_regression", cv_folds=5)
        )
        view = await finished_run(service, alice, run_id, timeout=60)
    said = "class 'rare' has 4 rows in all and may get only 3 there. Use at most 3 folds, or turn cross-validation off."
    assert [f.message for f in report.findings if f.level == "error"] == [
        "5-fold cross-validation needs at least 5 rows of each class in the training rows; " + said
    ]
    assert view.status == "failed" and said in view.error
    assert await _activity_attempts(client, run_id) == [1]


async def test_the_data_check_shows_the_bound_and_is_asked_once_per_setting_it_reads(client, settings, service, alice):
    async with running_workers(client, settings):
        ds = await service.upload_dataset(alice, "small.csv", classification_csv(rows=30))
        first = await service.check_data(alice, ds.dataset_id, "bought", "knn_classifier", {"n_neighbors": 50})
        # "weights" is not read by the check: answered from the service's cache, no workflow
        again = await service.check_data(
            alice, ds.dataset_id, "bought", "knn_classifier", {"n_neighbors": 50, "weights": "distance"}
        )
        fixed = await service.check_data(alice, ds.dataset_id, "bought", "knn_classifier", {"n_neighbors": 24})
    errors = [f.message for f in first.findings if f.level == "error"]
    assert len(errors) == 1 and errors[0].startswith(KNN_TOO_MANY)
    assert again == first and not [f for f in fixed.findings if f.level == "error"]

    async def two():
        return len(await _ids(client, alice, "check")) >= 2

    await eventually(two, timeout=20, interval=0.2)
    await asyncio.sleep(1.0)
    assert len(await _ids(client, alice, "check")) == 2


def _evaluation(service, user: User, run_id: str) -> Evaluation:
    evaluation = service.get_evaluation(user, run_id)
    assert evaluation is not None, "the finished run has no evaluation"
    return evaluation


def _customers(rows: int = 200) -> bytes:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"customer_id": np.arange(100_001, 100_001 + rows), "age": rng.integers(18, 80, rows)})
    df["spend"] = rng.normal(100, 30, rows).round(2)
    # churn follows the row order, so an identifier would look like the best feature: it must not be used
    df["churned"] = np.where(np.arange(rows) < rows // 2, "yes", "no")
    return df.to_csv(index=False).encode()


async def test_a_numeric_identifier_is_left_out_of_a_run_unless_the_user_keeps_it(client, settings, service, alice):
    async with running_workers(client, settings):
        ds = await service.upload_dataset(alice, "customers.csv", _customers())
        report = await service.check_data(alice, ds.dataset_id, "churned", "random_forest_classifier", {"n_estimators": 10})
        plain = await service.start_training(
            alice, TrainRequest(alice.name, ds.dataset_id, "churned", "random_forest_classifier", {"n_estimators": 10})
        )
        kept = await service.start_training(
            alice,
            TrainRequest(
                alice.name,
                ds.dataset_id,
                "churned",
                "random_forest_classifier",
                {"n_estimators": 10},
                include_columns=["customer_id"],
            ),
        )
        plain_view = await finished_run(service, alice, plain)
        kept_view = await finished_run(service, alice, kept)
    assert report.id_columns == ["customer_id"] and report.features == 2
    assert any(f.level == "warning" and "'customer_id' looks like an identifier" in f.message for f in report.findings)
    assert plain_view.status == kept_view.status == "completed", (plain_view.error, kept_view.error)
    assert plain_view.facts.features == 2 and kept_view.facts.features == 3
    assert any("customer_id (its name says identifier" in n for n in plain_view.facts.notes or [])
    features = {v.run_id: [f.feature for f in _evaluation(service, alice, v.run_id).importance] for v in (plain_view, kept_view)}
    assert "customer_id" not in features[plain] and features[kept][0] == "customer_id"
    record = service.registry.by_run(alice.name, plain)
    assert [c["name"] for c in record.card["input_schema"]] == ["age", "spend"]
