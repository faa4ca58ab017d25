"""Timers and retry backoff on the time-skipping test server: a one-day wait passes in seconds of real time.

The training activities are fakes registered under the real names (no data, no sklearn), so what is tested
is the workflows' own timing: the batch's decision timeout and the RETRY policy's backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from core.config import load_settings
from core.names import new_run_id
from orchestration.activity_errors import INVALID_INPUT
from orchestration.client import data_converter
from orchestration.contracts import (
    SEARCH_ATTRIBUTES,
    BatchInput,
    BatchItem,
    BatchRequest,
    RunFacts,
    StageResult,
    TrainInput,
    TrainRequest,
)
from orchestration.workflows import BatchTrainingWorkflow, TrainingWorkflow
from orchestration.workflows.batch import AWAIT_DECISION
from orchestration.workflows.policy import RETRY
from tests.helpers import BIN, test_settings
from workers.worker import build_workers

OWNER = "skipper"
DATASET_ID = "0123456789abcdef"
REAL_TIME_BUDGET = 60.0  # seconds of wall-clock time any one of these tests may take
pytestmark = pytest.mark.timeout(120)  # a workflow stuck on this server waits for ever: fail instead


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def skipping_env():
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        test_server_startup_timeout=timedelta(seconds=60),
        data_converter=data_converter(load_settings()),
    )
    # Children carry search attributes; this server leaves a child with unknown ones unstarted for ever (it
    # has no ListSearchAttributes, so orchestration.client.ensure_search_attributes cannot be used here).
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES},
        )
    )
    yield env
    await env.shutdown()


def _step(name: str, facts: Callable[[TrainInput], RunFacts] | None = None, fail: Callable[[TrainInput], None] | None = None):
    """A fake training activity registered under the real name `name`."""

    @activity.defn(name=name)
    def step(inp: TrainInput) -> StageResult:
        if fail is not None:
            fail(inp)
        return StageResult(activity.info().attempt, facts(inp) if facts else RunFacts())

    return step


def fake_training(**overrides) -> dict[str, Callable]:
    """All six stages succeed at once; `overrides` swaps some of them."""
    fakes = {name: _step(name) for name in ("load_and_validate", "preprocess_split", "cross_validate", "fit_model", "save_model")}
    fakes["evaluate_model"] = _step(
        "evaluate_model", lambda inp: RunFacts(metrics={"balanced_accuracy": inp.request.params.get("score", 0.5)})
    )
    return {**fakes, **overrides}


@asynccontextmanager
async def workers(env: WorkflowEnvironment, settings, activities: dict[str, Callable]):
    """The real workers of workers/worker.py with fake training activities (the time-skipping server has
    no task-queue description API, so no waiting for pollers: the workflow task waits for them)."""
    built = build_workers(env.client, settings, replace_activities=activities)
    async with AsyncExitStack() as running:
        for worker in built:
            await running.enter_async_context(worker)
        yield


@pytest.fixture
def settings(tmp_path):
    return test_settings(tmp_path)


async def test_batch_with_a_failed_child_closes_itself_after_the_one_day_decision_wait(skipping_env, settings):
    def refuse_the_bad_one(inp: TrainInput) -> None:
        if inp.request.params.get("bad"):
            raise ApplicationError("this configuration cannot work", type=INVALID_INPUT, non_retryable=True)

    items = [
        BatchItem("logistic_regression", {"score": 0.7}),
        BatchItem("gaussian_nb", {"bad": True}),
        BatchItem("decision_tree_classifier", {"score": 0.9}),
    ]
    batch_id = new_run_id("batch", OWNER)
    wall = time.monotonic()
    async with workers(skipping_env, settings, fake_training(fit_model=_step("fit_model", fail=refuse_the_bad_one))):
        clock_before = await skipping_env.get_current_time()
        handle = await skipping_env.client.start_workflow(
            BatchTrainingWorkflow.run,
            BatchInput(batch_id, BatchRequest(OWNER, DATASET_ID, "y", items, max_parallel=2)),
            id=batch_id,
            task_queue=settings.task_queue,
        )
        result = await handle.result()  # no signal is ever sent: only the timeout can end the wait
        clock_after = await skipping_env.get_current_time()
        timers = [
            e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            async for e in handle.fetch_history_events()
            if e.HasField("timer_started_event_attributes")
        ]
    assert time.monotonic() - wall < REAL_TIME_BUDGET
    assert timers == [AWAIT_DECISION], "one wait for a decision, and it was the one-day one"
    assert clock_after - clock_before >= AWAIT_DECISION, "the batch waited out the full day on the server's clock"
    assert result.phase == "done"
    assert [c.status for c in result.children] == ["completed", "failed", "completed"]
    assert "cannot work" in result.children[1].error
    assert [c.attempts for c in result.children] == [1, 1, 1]  # no retry without a "retry failed" signal
    assert result.best_run_id == result.children[2].run_id  # the higher score of the two that finished


async def test_a_retryable_failure_is_retried_with_exponential_backoff(skipping_env, settings):
    attempts: list[tuple[int, datetime]] = []

    def flaky(inp: TrainInput) -> None:
        info = activity.info()
        attempts.append((info.attempt, info.started_time))  # the server's (skipped) clock at each start
        if info.attempt < 3:
            raise ApplicationError("the disk was busy", type="Transient")

    run_id = new_run_id("train", OWNER)
    wall = time.monotonic()
    async with workers(skipping_env, settings, fake_training(load_and_validate=_step("load_and_validate", fail=flaky))):
        result = await skipping_env.client.execute_workflow(
            TrainingWorkflow.run,
            TrainInput(run_id, TrainRequest(OWNER, DATASET_ID, "y", "logistic_regression")),
            id=run_id,
            task_queue=settings.task_queue,
        )
    assert time.monotonic() - wall < REAL_TIME_BUDGET
    assert [n for n, _ in attempts] == [1, 2, 3]
    gaps = [(b - a).total_seconds() for (_, a), (_, b) in zip(attempts, attempts[1:])]
    first = RETRY.initial_interval.total_seconds()
    expected = [first, first * RETRY.backoff_coefficient]  # 1 s, then 2 s
    assert all(want <= gap < want + 1 for gap, want in zip(gaps, expected, strict=True)), gaps
    load = result.stages[0]
    assert (load.name, load.status, load.attempt) == ("load", "done", 3)
    assert load.seconds >= sum(expected), "the workflow's own clock saw the backoff"
    assert result.stage == "done"


@pytest.mark.parametrize("flagged", [True, False], ids=["flagged-non-retryable", "by-type-only"])
async def test_invalid_input_is_not_retried(skipping_env, settings, flagged):
    """RETRY lists InvalidInput as non-retryable, so even an error not flagged as such is final."""
    attempts: list[int] = []

    def refuse(inp: TrainInput) -> None:
        attempts.append(activity.info().attempt)
        raise ApplicationError("the target column is empty", type=INVALID_INPUT, non_retryable=flagged)

    run_id = new_run_id("train", OWNER)
    async with workers(skipping_env, settings, fake_training(preprocess_split=_step("preprocess_split", fail=refuse))):
        with pytest.raises(WorkflowFailureError) as caught:
            await skipping_env.client.execute_workflow(
                TrainingWorkflow.run,
                TrainInput(run_id, TrainRequest(OWNER, DATASET_ID, "y", "logistic_regression")),
                id=run_id,
                task_queue=settings.task_queue,
            )
    assert attempts == [1]
    failure = caught.value.cause
    assert isinstance(failure, ApplicationError) and failure.type == "TrainingFailed"
    assert "target column is empty" in str(failure)
    progress = failure.details[0]
    statuses = {s["name"]: s["status"] for s in progress["stages"]}
    assert (statuses["load"], statuses["preprocess"], statuses["fit"]) == ("done", "failed", "pending")
