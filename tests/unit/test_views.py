"""The run and batch views built from plain data: merging sources, percent, ETA, leaderboard (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus

from orchestration.contracts import STAGES, BatchProgress, ChildState, RunProgress, StageProgress
from orchestration.errors import NotFound
from orchestration.views import (
    BatchView,
    PendingActivity,
    build_run_view,
    elapsed_s,
    percent_done,
    remaining_s,
    status_name,
)

RUN = "train-alice-" + "a" * 32
START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
NOW = START + timedelta(seconds=40)


def _stages(done: int, running: bool = True) -> list[StageProgress]:
    """The first `done` stages done, the next one running (or pending), the rest pending."""
    stages = [StageProgress(s, "done") for s in STAGES[:done]]
    if done < len(STAGES):
        stages.append(StageProgress(STAGES[done], "running" if running else "pending"))
        stages += [StageProgress(s) for s in STAGES[done + 1 :]]
    return stages


def _progress(run_id: str = RUN, **kw) -> RunProgress:
    return RunProgress(run_id, "random_forest_classifier", "0123456789abcdef", "y", **kw)


def test_completed_run_is_at_100_percent_with_its_metrics_and_no_eta():
    progress = _progress(stage="save", stages=_stages(len(STAGES)), metrics={"accuracy": 0.9})
    view = build_run_view(RUN, "completed", progress, started_at=START, closed_at=START + timedelta(seconds=30), now=NOW)
    assert (view.percent, view.metrics, view.duration_s, view.eta_s) == (100.0, {"accuracy": 0.9}, 30.0, None)
    assert not view.running and not view.waiting_for_worker


def test_failed_run_shows_its_error_and_the_stage_it_failed_in():
    stages = _stages(3)
    stages[3].status = "failed"
    view = build_run_view(
        RUN, "failed", _progress(stage="fit", stages=stages, error="bad data"), started_at=START, closed_at=NOW, now=NOW
    )
    assert (view.status, view.stage, view.error, view.eta_s) == ("failed", "fit", "bad data", None)
    assert view.percent == 40.0  # load + preprocess + cv of 100 weight


def test_running_run_counts_the_heartbeat_step_and_estimates_the_rest():
    heartbeat = {"step": 50, "of": 100, "curve": {"train": [0.5]}}
    pending = [PendingActivity(attempt=2, scheduled=False, last_failure="worker lost", live=heartbeat)]
    view = build_run_view(RUN, "running", _progress(stage="fit", stages=_stages(3)), pending=pending, started_at=START, now=NOW)
    assert view.percent == 62.5  # 40 done + half of fit's 45
    assert view.live == heartbeat and view.curve == {"train": [0.5]}
    assert (view.attempt, view.last_failure) == (2, "worker lost")
    assert view.duration_s == 40.0 and view.eta_s == remaining_s(62.5, 40.0)


def test_a_run_no_worker_answered_for_is_waiting_and_shown_from_its_search_attributes():
    pending = [PendingActivity(attempt=1, scheduled=True)]
    view = build_run_view(
        RUN,
        "running",
        None,
        query_failed=True,
        pending=pending,
        model="ridge",
        dataset_id="0123456789abcdef",
        started_at=START,
        now=NOW,
    )
    assert view.waiting_for_worker
    assert (view.model, view.dataset_id, view.stage, view.percent) == ("ridge", "0123456789abcdef", "load", 0.0)
    assert [s.name for s in view.stages] == list(STAGES)


def test_a_scheduled_first_attempt_is_waiting_only_while_nothing_reported_progress():
    pending = [PendingActivity(attempt=1, scheduled=True)]
    assert build_run_view(RUN, "running", None, pending=pending, now=NOW).waiting_for_worker
    assert not build_run_view(RUN, "running", _progress(stages=_stages(0)), pending=pending, now=NOW).waiting_for_worker


def test_a_failed_query_on_a_closed_run_is_not_waiting():
    assert not build_run_view(RUN, "cancelled", None, query_failed=True, now=NOW).waiting_for_worker


def test_a_progress_of_another_run_is_not_found():
    with pytest.raises(NotFound, match="No such run"):
        build_run_view(RUN, "completed", _progress("train-mallory-" + "b" * 32), now=NOW)


def test_percent_weighs_stages_and_leaves_skipped_ones_out():
    assert percent_done(_stages(0), {}) == 0.0
    assert percent_done(_stages(2), {}) == 10.0
    skipped_cv = _stages(3)
    skipped_cv[2].status = "skipped"
    assert percent_done(skipped_cv, {}) == round(100 * 10 / 70, 1)


def test_percent_caps_the_running_stage_at_its_weight():
    assert percent_done(_stages(3), {"step": 500, "of": 100}) == 85.0
    assert percent_done(_stages(3), {"step": 500}) == 40.0  # no "of": the heartbeat says nothing of progress


@pytest.mark.parametrize(
    ("percent", "elapsed", "eta"),
    [(50.0, 30.0, 30.0), (25.0, 10.0, 30.0), (4.9, 10.0, None), (100.0, 10.0, None), (50.0, None, None)],
)
def test_eta_is_the_pace_so_far_once_there_is_enough_progress(percent, elapsed, eta):
    assert remaining_s(percent, elapsed) == eta


def test_elapsed_runs_to_now_while_open():
    assert elapsed_s(START, None, NOW) == 40.0
    assert elapsed_s(START, START + timedelta(seconds=5), NOW) == 5.0
    assert elapsed_s(None, None, NOW) is None


def test_status_names():
    assert status_name(WorkflowExecutionStatus.CANCELED) == "cancelled"
    assert status_name(WorkflowExecutionStatus.CONTINUED_AS_NEW) == "running"
    assert status_name(WorkflowExecutionStatus.TIMED_OUT) == "timed_out"
    assert status_name(None) == "unknown"


def test_leaderboard_ranks_finished_children_best_first():
    children = [
        ChildState(0, "ridge", {}, "r0", "completed", {"r2": 0.5}, seconds=1.0),
        ChildState(1, "lasso", {}, "r1", "completed", {"r2": 0.8}, seconds=2.0),
        ChildState(2, "svr", {}, "r2", "failed", error="boom"),
        ChildState(3, "knn_regressor", {}, "r3", "running"),
    ]
    progress = BatchProgress("batch-alice-" + "c" * 32, "d", "y", "regression", "r2", 2, False, children, best_run_id="r1")
    board = BatchView(progress.batch_id, "running", START, 1.0, progress).leaderboard()
    assert [(row["rank"], row["model"], row["r2"], row["best"]) for row in board] == [
        (1, "lasso", 0.8, True),
        (2, "ridge", 0.5, False),
    ]


def test_leaderboard_is_empty_before_a_worker_answered():
    assert BatchView("b", "running", None, None, None).leaderboard() == []
