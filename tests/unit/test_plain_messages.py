"""Failure messages as a user reads them: no exception class names, no Temporal words (activity_errors), on
the run page and the batch page alike, for new failures and for text stored before the mapping existed."""

from __future__ import annotations

import dataclasses
import signal
from datetime import UTC, datetime

import pytest
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    RetryState,
    TimeoutError,
    TimeoutType,
)
from temporalio.testing import ActivityEnvironment

from ml.child_fit import ChildDied, died_message
from orchestration.activity_errors import (
    CANCELLED,
    STOPPED_RESPONDING,
    UNKNOWN,
    child_died,
    plain_failure,
    plain_text,
    refuse,
)
from orchestration.contracts import STAGES, BatchProgress, ChildState, RunProgress, StageProgress
from orchestration.progress import PendingActivity
from orchestration.views import BatchView, build_run_view
from orchestration.workflows.policy import failure_message

NOW = datetime(2025, 1, 1, tzinfo=UTC)
JARGON = ("InvalidInput", "Error:", "activity", "Activity", "workflow", "Workflow", "Heartbeat", "RPC", "timeout")


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("InvalidInput: The dataset no longer exists; upload it again.", "The dataset no longer exists; upload it again."),
        ("ValueError: Expected n_neighbors <= n_samples_fit", "Expected n_neighbors <= n_samples_fit"),
        ("RuntimeError: ValueError: Input contains NaN.", "Input contains NaN."),  # a child process's error
        ("FitProcessDied: The training process stopped unexpectedly.", "The training process stopped unexpectedly."),
        ("RPCError: connection refused", "connection refused"),
        ("builtins.KeyError: 'x'", "'x'"),
        ("activity Heartbeat timeout", STOPPED_RESPONDING),
        ("activity StartToClose timeout", "This step ran longer than its time limit."),
        ("activity ScheduleToStart timeout", "No worker picked this step up in time."),
        ("activity ScheduleToClose timeout", "This step did not finish within its time limit."),
        ("Activity task failed", "A step of the run failed."),
        ("Child Workflow execution failed", "A run of the batch failed."),
        ("Workflow execution failed", "The run failed."),
        ("Workflow execution already started", "It has already been started."),
        ("Activity cancelled", CANCELLED),
        ("", UNKNOWN),
        (None, UNKNOWN),
        # plain messages stay as they are, even with a colon or a capital
        ("Configuration 2 (Ridge): 'alpha' must be between", "Configuration 2 (Ridge): 'alpha' must be between"),
        ("'n_neighbors' is 20, but each fit sees only 9 rows", "'n_neighbors' is 20, but each fit sees only 9 rows"),
        ("Estimated fit time ~2 min exceeds the 1-minute budget.", "Estimated fit time ~2 min exceeds the 1-minute budget."),
    ],
)
def test_plain_text(text, plain):
    assert plain_text(text) == plain


def _activity_error(cause: BaseException) -> ActivityError:
    err = ActivityError(
        "Activity task failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="w",
        activity_type="fit_model",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = cause
    return err


def _child_error(cause: BaseException) -> ChildWorkflowError:
    err = ChildWorkflowError(
        "Child Workflow execution failed",
        namespace="default",
        workflow_id="train-alice-1",
        run_id="r",
        workflow_type="TrainingWorkflow",
        initiated_event_id=1,
        started_event_id=2,
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = cause
    return err


def test_a_refusal_reads_without_its_type():
    refusal = refuse("'n_neighbors' is 20, but each fit sees only 9 rows.")
    assert str(refusal).startswith("InvalidInput: ")  # what the old failure_message showed
    assert plain_failure(_activity_error(refusal)) == "'n_neighbors' is 20, but each fit sees only 9 rows."
    assert failure_message(_child_error(_activity_error(refusal))) == "'n_neighbors' is 20, but each fit sees only 9 rows."


def test_a_python_error_raised_in_an_activity_reads_without_its_type():
    converted = ApplicationError("Expected n_neighbors <= n_samples_fit", type="ValueError")
    assert failure_message(_activity_error(converted)) == "Expected n_neighbors <= n_samples_fit"


def test_a_heartbeat_timeout_says_the_worker_stopped_responding_not_the_last_attempts_error():
    timeout = TimeoutError("activity Heartbeat timeout", type=TimeoutType.HEARTBEAT, last_heartbeat_details=[])
    timeout.__cause__ = ApplicationError("an older attempt's error", type="RuntimeError")
    assert failure_message(_activity_error(timeout)) == STOPPED_RESPONDING


def test_a_cancel_says_so():
    assert failure_message(_child_error(CancelledError("Workflow cancelled"))) == CANCELLED


def test_a_plain_exception_keeps_its_message():
    assert failure_message(RuntimeError("the disk is full")) == "the disk is full"
    assert failure_message(RuntimeError()) == UNKNOWN


def test_the_run_view_shows_stored_and_pending_failures_in_plain_words():
    """A run that failed before the mapping stored "InvalidInput: ..."; a retrying one reports Temporal's words."""
    stages = [StageProgress(name) for name in STAGES]
    failed = RunProgress("train-alice-1", "knn_classifier", "d" * 16, "y", stages=stages, error="InvalidInput: Too many.")
    view = build_run_view("train-alice-1", "failed", failed, now=NOW)
    assert view.error == "Too many."
    running = RunProgress("train-alice-1", "knn_classifier", "d" * 16, "y", stages=stages)
    retrying = build_run_view(
        "train-alice-1", "running", running, pending=[PendingActivity(2, False, "activity Heartbeat timeout")], now=NOW
    )
    assert retrying.last_failure == STOPPED_RESPONDING and retrying.attempt == 2
    for text in (view.error, retrying.last_failure):
        assert not any(word in text for word in JARGON), text


def test_the_batch_view_shows_child_errors_in_plain_words():
    children = [
        ChildState(0, "knn_classifier", {}, status="failed", error="InvalidInput: Too many neighbours."),
        ChildState(1, "ridge", {}, status="failed", error="activity StartToClose timeout"),
        ChildState(2, "ridge", {}, status="completed"),
    ]
    progress = BatchProgress("batch-alice-1", "d" * 16, "y", "regression", "r2", 2, False, children)
    view = BatchView("batch-alice-1", "completed", NOW, 1.0, progress)
    assert [c.error for c in view.progress.children] == [  # type: ignore[union-attr]
        "Too many neighbours.",
        "This step ran longer than its time limit.",
        None,
    ]


def test_a_heartbeat_timeout_does_not_blame_the_worker_alone():
    """A hung Temporal server times out the heartbeats of a healthy worker: the sentence names both causes."""
    timeout = TimeoutError("activity Heartbeat timeout", type=TimeoutType.HEARTBEAT, last_heartbeat_details=[])
    text = failure_message(_activity_error(timeout))
    assert "worker" in text and "training engine (Temporal) could not be reached" in text and "retried" in text
    assert not text.startswith("The worker running this step stopped responding")


@pytest.mark.parametrize(
    ("attempt", "says"), [(1, "It will be retried."), (4, "It will be retried."), (5, "That was its last attempt.")]
)
def test_a_fit_process_that_died_says_whether_it_is_tried_again(attempt, says):
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, retry_policy=RetryPolicy(maximum_attempts=5))
    error = env.run(child_died, ChildDied(died_message(-signal.SIGKILL)))
    assert error.message == f"The training process stopped unexpectedly: SIGKILL (out of memory, or killed by the system). {says}"
    assert not error.non_retryable  # Temporal's policy decides; the message only says what it will do
