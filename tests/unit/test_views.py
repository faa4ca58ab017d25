"""The run and batch views built from plain data: merging sources, percent, ETA, leaderboard (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus

from orchestration.contracts import STAGES, BatchProgress, ChildState, RunProgress, StageHeartbeat, StageProgress
from orchestration.errors import NotFound
from orchestration.progress import PendingActivity, RunSeen, RunWatch, live_detail, percent_done, stage_time_left
from orchestration.views import BatchView, build_run_view, elapsed_s, status_name, temporal_ui_url

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
    heartbeat = StageHeartbeat(step=50, of=100, curve={"train": [0.5]})
    attempt_started = NOW - timedelta(seconds=600)
    pending = [PendingActivity(2, False, "worker lost", heartbeat, started=attempt_started)]
    view = build_run_view(RUN, "running", _progress(stage="fit", stages=_stages(3)), pending=pending, started_at=START, now=NOW)
    assert view.percent == 62.5  # 40 done + half of fit's 45
    assert view.live == heartbeat and view.curve == {"train": [0.5]}
    assert (view.attempt, view.last_failure) == (2, "worker lost")
    assert view.stages[3].attempt == 2, "the running stage shows the attempt under way"
    assert view.duration_s == 40.0
    assert view.eta_s == 600.0  # 50 steps in this attempt's 600 s: 12 s a step, 50 to go


def _fit_read(seen: RunSeen, at: datetime, step: int, attempt: int = 1, started: datetime = NOW, status="running", **live):
    stages = _stages(3)
    if status != "running":
        stages[3].status = status
    pending = (
        [PendingActivity(attempt, False, live=StageHeartbeat(step=step, of=100, **live), started=started)]
        if status == "running"
        else []
    )
    return build_run_view(
        RUN, status, _progress(stage="fit", stages=stages), pending=pending, started_at=START, now=at, seen=seen
    )


def test_percent_never_goes_back_across_a_retry_a_resume_and_a_cancel():
    seen = RunSeen()
    first = _fit_read(seen, NOW, 80).percent
    assert first == 76.0
    assert _fit_read(seen, NOW + timedelta(seconds=2), 0, attempt=2).percent == first, "a retry restarts the fit at step 0"
    assert _fit_read(seen, NOW + timedelta(seconds=4), 60, attempt=3, resumed_from=60).percent == first, (
        "resumed from an older checkpoint"
    )
    assert _fit_read(seen, NOW + timedelta(seconds=6), 90, attempt=3, resumed_from=60).percent == 80.5, "and it moves on past it"
    assert _fit_read(seen, NOW + timedelta(seconds=8), 90, status="cancelled").percent == 80.5, (
        "a cancelled stage counts no steps"
    )
    assert _fit_read(RunSeen(), NOW, 80, status="cancelled").percent == 40.0, "without a floor: what is done"


def test_no_time_left_until_a_step_has_finished_then_the_pace_of_this_attempt():
    seen = RunSeen()
    assert _fit_read(seen, NOW + timedelta(seconds=30), 0).eta_s is None, "no pace yet: no estimate (not 13 s, 20 s, 70 s…)"
    assert _fit_read(seen, NOW + timedelta(seconds=100), 10).eta_s == 900.0  # 10 s a step
    # a retry starts a new pace, from its own start, and steps it resumed from are not its own
    retried = NOW + timedelta(seconds=200)
    assert _fit_read(seen, retried + timedelta(seconds=120), 60, attempt=2, started=retried, resumed_from=50).eta_s == 480.0


def test_fast_steps_show_no_time_left_from_the_attempts_start():
    """Under SLOW_STEP_SECONDS a step, the attempt's pace is mostly its start-up: a 300-tree forest with 1 s of
    start-up read 10 minutes left at tree 2 (of a 24 s fit). Only all steps done needs no pace: 0 s left."""
    seen = RunSeen()
    assert _fit_read(seen, NOW + timedelta(seconds=2), 2).eta_s is None
    assert _fit_read(seen, NOW + timedelta(seconds=99), 99).eta_s is None, "1 s a step"
    assert _fit_read(seen, NOW + timedelta(seconds=200), 100).eta_s == 0.0


def test_the_pace_is_taken_between_steps_seen_not_from_the_stage_start_up():
    seen = RunSeen()
    # 9 s of start-up (data, probe fit), then 0.2 s a step: step 5 seen at 10 s, step 25 at 14 s, 35 at 16 s
    assert _fit_read(seen, NOW + timedelta(seconds=10), 5).eta_s is None, "the attempt's pace (2 s a step) is start-up"
    assert _fit_read(seen, NOW + timedelta(seconds=14), 25).eta_s is None, "the first step seen to begin: no pace yet"
    assert _fit_read(seen, NOW + timedelta(seconds=16), 35).eta_s == 13.0, "65 steps at 0.2 s, from step 25 on"
    assert _fit_read(seen, NOW + timedelta(seconds=18), 45).eta_s == 11.0
    # a retry paces itself from its own steps, not from the attempt before
    retried = NOW + timedelta(seconds=20)
    assert _fit_read(seen, retried + timedelta(seconds=6), 30, attempt=2, started=retried).eta_s is None
    assert _fit_read(seen, retried + timedelta(seconds=7), 40, attempt=2, started=retried).eta_s is None
    assert _fit_read(seen, retried + timedelta(seconds=8), 60, attempt=2, started=retried).eta_s == 2.0  # 20 steps in 1 s


def test_a_page_opened_in_the_middle_of_a_long_step_is_not_paced_from_it():
    seen = RunSeen()
    # 60 s a step: step 3 began at 180 s, the page first reads it at 230 s; step 4 begins at 240, step 5 at 300
    assert _fit_read(seen, NOW + timedelta(seconds=230), 3).eta_s == round(230 / 3 * 97, 1)
    assert _fit_read(seen, NOW + timedelta(seconds=241), 4).eta_s == round(241 / 4 * 96, 1), "not 11 s a step"
    assert _fit_read(seen, NOW + timedelta(seconds=301), 5).eta_s == 60 * 95


def test_the_pace_is_not_taken_from_a_step_first_seen_part_way_through():
    """30 s a step; this process first reads the run 28 s into step 10 (it restarted, or the page opened late),
    then every 2 s: step 11 seen 2 s later is no sign of 2 s a step (that read 178 s left, then climbed to 1,408).
    (From the hostile review.)"""
    seen = RunSeen()
    etas = [_fit_read(seen, NOW + timedelta(seconds=t), step).eta_s for t, step in [(328, 10), (330, 11), (360, 12)]]
    assert etas == [2952.0, 2670.0, 2640.0], "the attempt's pace until a step is seen to begin, then 30 s a step"
    assert _fit_read(seen, NOW + timedelta(seconds=390), 13).eta_s == 2610.0


def test_time_left_does_not_climb_while_a_step_takes_long():
    seen = RunSeen()
    etas = [_fit_read(seen, NOW + timedelta(seconds=t), 50).eta_s for t in (650, 700, 900, 1200, 3000)]
    assert etas[0] == 650.0  # 50 steps in 650 s, 50 to go
    assert etas == sorted(etas, reverse=True), etas
    assert etas[-1] == round(650 / 50 * 49, 1), "the steps after the late one still take their time"


@pytest.mark.parametrize(
    ("live", "started", "seen_at", "left"),
    [
        ({"step": 1, "of": 2}, 0, 13, 13.0),
        ({"step": 1, "of": 2}, 0, 13 + 57, 70.0),  # first seen late: the pace is an upper bound, then refined
        ({"step": 2, "of": 2}, 0, 10, 0.0),  # all steps done: only the stage's wrap-up is left
        ({"step": 0, "of": 5}, 0, 10, None),
        ({"step": 3}, 0, 10, None),  # no "of": the heartbeat says nothing of progress
        ({"step": 3, "of": 5, "resumed_from": 3}, 0, 10, None),  # nothing done in this attempt yet
    ],
)
def test_stage_time_left(live, started, seen_at, left):
    live = StageHeartbeat(**live)
    assert (
        stage_time_left(
            live, NOW + timedelta(seconds=started), NOW + timedelta(seconds=seen_at), NOW + timedelta(seconds=seen_at)
        )
        == left
    )
    assert stage_time_left(live, None, NOW, NOW) is None


def test_attempts_of_a_closed_run_are_the_most_any_stage_needed():
    stages = _stages(3)
    stages[0].attempt, stages[3].status, stages[3].attempt = 1, "failed", 5
    view = build_run_view(RUN, "failed", _progress(stage="fit", stages=stages, error="boom"), now=NOW)
    assert view.attempt == 5 and view.stages[3].attempt == 5
    assert build_run_view(RUN, "completed", _progress(stages=_stages(6)), now=NOW).attempt == 1


def test_a_closed_run_has_no_running_stage():
    terminated = build_run_view(RUN, "terminated", _progress(stage="fit", stages=_stages(3)), now=NOW)
    assert [s.status for s in terminated.stages][3] == "cancelled"
    failed = build_run_view(RUN, "failed", _progress(stage="fit", stages=_stages(3)), now=NOW)
    assert failed.stages[3].status == "failed" and failed.eta_s is None


@pytest.mark.parametrize(
    ("live", "text"),
    [
        ({"fold": 0, "of": 5, "step": 0, "resumed_from": 0}, "fold 1 of 5"),
        ({"fold": 2, "of": 5, "step": 2, "resumed_from": 2}, "fold 3 of 5 · resumed after fold 2"),
        ({"fold": 5, "of": 5, "step": 5}, "fold 5 of 5"),
        ({"step": 0, "of": 10, "resumed_from": 0}, "step 1 of 10"),
        ({"step": 0, "of": 1}, ""),  # a single-call fit: one step, nothing to count
        ({"step": 1, "of": 2, "part": "feature importance"}, "step 2 of 2 · feature importance"),
        # a fit names what it counts, as the estimator does
        ({"step": 40, "of": 100, "unit": "tree", "resumed_from": 30}, "tree 41 of 100 · resumed after tree 30"),
        ({"step": 7, "of": 50, "unit": "iteration"}, "iteration 8 of 50"),
        ({"step": 2, "of": 200, "unit": "epoch"}, "epoch 3 of 200"),
        ({"step": 2, "of": 20, "unit": "<b>trees</b>"}, "step 3 of 20"),  # a word of its own is never shown
        ({"step": 2, "of": 20, "unit": ["tree"]}, "step 3 of 20"),
    ],
)
def test_live_detail_counts_the_fold_under_way_from_one(live, text):
    assert live_detail(StageHeartbeat(**live)) == text


def test_temporal_ui_url():
    url = temporal_ui_url("http://localhost:8233/", "default", RUN)
    assert url == f"http://localhost:8233/namespaces/default/workflows/{RUN}"
    assert temporal_ui_url("http://h:1", "a/b c", "x?y") == "http://h:1/namespaces/a%2Fb%20c/workflows/x%3Fy"
    assert temporal_ui_url("", "default", RUN) is None


def test_run_watch_keeps_the_runs_read_last():
    watch = RunWatch(size=2)
    watch("a").percent = 50.0
    watch("b")
    watch("a")
    watch("c")  # "b" was read least recently: forgotten
    assert watch("a").percent == 50.0 and watch("b").percent == 0.0


def test_a_closed_batch_with_a_child_still_running_is_settling():
    children = [ChildState(0, "ridge", {}, "r0", "cancelled"), ChildState(1, "lasso", {}, "r1", "running")]
    progress = BatchProgress("batch-alice-" + "c" * 32, "d", "y", "regression", "r2", 2, False, children)
    assert BatchView(progress.batch_id, "cancelled", START, 1.0, progress).settling
    assert not BatchView(progress.batch_id, "running", START, 1.0, progress).settling
    children[1].status = "cancelled"
    assert not BatchView(progress.batch_id, "cancelled", START, 1.0, progress).settling


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
    assert percent_done(_stages(0), StageHeartbeat()) == 0.0
    assert percent_done(_stages(2), StageHeartbeat()) == 10.0
    skipped_cv = _stages(3)
    skipped_cv[2].status = "skipped"
    assert percent_done(skipped_cv, StageHeartbeat()) == round(100 * 10 / 70, 1)


def test_percent_caps_the_running_stage_at_its_weight():
    assert percent_done(_stages(3), StageHeartbeat(step=500, of=100)) == 85.0
    assert percent_done(_stages(3), StageHeartbeat(step=500)) == 40.0  # no "of": the heartbeat says nothing of progress


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


def test_a_heartbeat_decodes_into_its_type_whether_sent_as_the_type_or_as_a_dict():
    from dataclasses import asdict

    from orchestration.run_reader import stage_heartbeat

    sent = StageHeartbeat(step=2, of=5, fold=2, resumed_from=1, part="feature importance", curve={"steps": [1]})
    assert stage_heartbeat(asdict(sent)) == sent
    # sent before the type existed: a plain dict, with keys it does not know
    assert stage_heartbeat({"step": 3, "of": 10, "elapsed": 1.5, "loss": [0.5], "new": "x"}) == StageHeartbeat(
        step=3, of=10, elapsed=1.5, loss=[0.5]
    )


@pytest.mark.parametrize("planted", [{"fold": "x", "of": "y"}, {"curve": [1, 2]}, ["step", 1], "text", None])
def test_a_heartbeat_that_does_not_fit_its_type_shows_no_live_details(planted):
    from orchestration.run_reader import stage_heartbeat

    assert stage_heartbeat(planted) == StageHeartbeat()


def test_a_run_list_row_is_built_from_the_search_attributes_the_run_was_started_with():
    from orchestration.contracts import run_attributes
    from orchestration.views import RunSummary, build_run_summary

    attrs = run_attributes("alice", "train", "0123456789abcdef", "ridge")
    row = build_run_summary(RUN, WorkflowExecutionStatus.CANCELED, attrs, START, START + timedelta(seconds=30), NOW)
    assert row == RunSummary(RUN, "cancelled", "ridge", "0123456789abcdef", START, 30.0, kind="train")
    running = build_run_summary(RUN, WorkflowExecutionStatus.RUNNING, attrs, START, None, NOW)
    assert (running.status, running.duration_s) == ("running", 40.0)
    batch = build_run_summary("batch-alice-" + "c" * 32, None, run_attributes("alice", "batch"), None, None, NOW)
    assert (batch.status, batch.model, batch.dataset_id, batch.duration_s, batch.kind) == ("unknown", "", "", None, "batch")
