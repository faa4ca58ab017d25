"""The run view across reads when the run's worker is gone or a stage is retried (no server): the last known
stages, not a run back at "load" waiting for a worker; a detail and a time left that do not go back or climb
from a stale pace; and a cancelled batch's star only on a best model it tagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestration.contracts import STAGES, BatchProgress, ChildState, RunProgress, StageHeartbeat, StageProgress, TrainRequest
from orchestration.progress import PendingActivity, RunSeen
from orchestration.views import BatchView, build_run_view

RUN = "train-alice-" + "a" * 32
START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
NOW = START + timedelta(seconds=40)
FIT = ["done", "done", "skipped", "running", "pending", "pending"]


def _progress() -> RunProgress:
    stages = [StageProgress(name, status) for name, status in zip(STAGES, FIT)]
    return RunProgress(RUN, "random_forest_classifier", "0123456789abcdef", "y", stage="fit", stages=stages)


def _fitting(step: int, attempt: int = 1, started: datetime = START, beat: datetime | None = None, **live) -> PendingActivity:
    heartbeat = StageHeartbeat(step=step, of=10, **live)
    return PendingActivity(attempt, False, live=heartbeat, started=started, heartbeat_at=beat or NOW, stage="fit")


def _read(seen: RunSeen, progress: RunProgress | None, at: datetime, *pending: PendingActivity):
    return build_run_view(
        RUN,
        "running",
        progress,
        query_failed=progress is None,
        pending=pending,
        model="random_forest_classifier",
        dataset_id="0123456789abcdef",
        started_at=START,
        now=at,
        seen=seen,
    )


def test_a_failed_query_shows_the_last_known_stages_and_says_it_is_re_reading():
    seen = RunSeen()
    first = _read(seen, _progress(), NOW, _fitting(3))
    assert (first.stage, first.rereading, first.waiting_for_worker) == ("fit", False, False)
    # the worker holding the run is killed: the query fails while the fit goes on on another worker
    again = _read(seen, None, NOW + timedelta(seconds=2), _fitting(4))
    assert again.stage == "fit" and [s.status for s in again.stages] == FIT, "not every stage back to pending"
    assert again.rereading and not again.waiting_for_worker
    assert again.percent >= first.percent and again.detail == "step 5 of 10"
    assert _read(seen, _progress(), NOW + timedelta(seconds=4), _fitting(5)).rereading is False, "answered again"


def test_a_process_that_never_saw_the_run_reads_the_stage_a_worker_is_running():
    """An app process that just started (nothing seen) and a query that does not answer: the activity a worker
    is running says which stage the run is in; the request read from the history says cross-validation is off."""
    seen = RunSeen(request=TrainRequest("alice", "0123456789abcdef", "y", "random_forest_classifier", cv_folds=0))
    view = _read(seen, None, NOW, _fitting(3))
    assert view.stage == "fit" and [s.status for s in view.stages] == FIT
    assert view.target == "y" and view.rereading and not view.waiting_for_worker
    assert view.percent == round(100 * (10 + 45 * 0.3) / 70, 1)  # load, preprocess and 3 of 10 fit steps; no cv


def test_with_no_worker_to_pick_the_stage_up_again_it_is_waiting_for_a_worker():
    seen = RunSeen()
    _read(seen, _progress(), NOW, _fitting(3))
    queued = PendingActivity(2, True, "The worker running this step stopped responding.", StageHeartbeat(step=3, of=10))
    view = _read(seen, None, NOW + timedelta(seconds=30), queued)
    assert view.waiting_for_worker and not view.rereading
    assert view.stage == "fit", "still the last known stage"


def test_a_resumed_stage_does_not_show_an_earlier_step():
    seen = RunSeen()
    assert _read(seen, _progress(), NOW, _fitting(3)).detail == "step 4 of 10"
    retried = NOW + timedelta(seconds=30)
    resumed = _read(seen, _progress(), retried + timedelta(seconds=1), _fitting(1, 2, retried, resumed_from=1))
    assert resumed.detail == "step 4 of 10 · resumed after step 1", "not 'step 2 of 10'"
    assert _read(seen, _progress(), retried + timedelta(seconds=9), _fitting(5, 2, retried, resumed_from=1)).detail == (
        "step 6 of 10 · resumed after step 1"
    )


def test_an_earlier_attempts_heartbeat_gives_no_time_left():
    """Temporal keeps the last heartbeat until the new attempt sends one: attempt 1's "step 3" with attempt 2's
    start would make a pace of nothing (a second for three steps) and then climb."""
    seen = RunSeen()
    retried = NOW + timedelta(seconds=30)
    stale = _fitting(3, 2, retried, beat=retried - timedelta(seconds=25))
    assert _read(seen, _progress(), retried + timedelta(seconds=1), stale).eta_s is None
    first_own = _fitting(2, 2, retried, beat=retried + timedelta(seconds=2), resumed_from=2)
    assert _read(seen, _progress(), retried + timedelta(seconds=2), first_own).eta_s is None
    paced = _fitting(3, 2, retried, beat=retried + timedelta(seconds=12), resumed_from=2)
    assert _read(seen, _progress(), retried + timedelta(seconds=12), paced).eta_s == 84.0  # 12 s a step, 7 to go


def _batch(status: str, tagged: bool) -> BatchView:
    best = ChildState(0, "gaussian_nb", {}, "train-alice-" + "b" * 32, "completed", {"balanced_accuracy": 0.9})
    other = ChildState(1, "logistic_regression", {}, "train-alice-" + "c" * 32, "cancelled")
    progress = BatchProgress(
        "batch-alice-" + "d" * 32,
        "0123456789abcdef",
        "y",
        "classification",
        "balanced_accuracy",
        2,
        False,
        [best, other],
        best_run_id=best.run_id,
        best_tagged=tagged,
    )
    return BatchView(progress.batch_id, status, START, 1.0, progress)


def test_a_cancelled_batch_stars_only_a_best_model_it_tagged():
    assert _batch("cancelled", tagged=True).leaderboard()[0]["best"]
    assert not _batch("cancelled", tagged=False).leaderboard()[0]["best"], "untagged: retention may delete it"
    assert _batch("completed", tagged=False).leaderboard()[0]["best"], "a finished batch tags its best as it ends"
    assert _batch("running", tagged=False).leaderboard()[0]["best"], "the best so far"


def _status_while_re_reading() -> None:
    from orchestration.contracts import STAGES, StageProgress
    from orchestration.views import RunView
    from ui.run_view import _draw_status

    fit = ["done", "done", "skipped", "running", "pending", "pending"]  # AppTest runs this function alone
    stages = [StageProgress(name, status) for name, status in zip(STAGES, fit)]
    view = RunView(
        "train-alice-" + "a" * 32, "running", "random_forest_classifier", "0" * 16, "y", None, 9.0, "fit", 40.0, stages
    )
    view.rereading = True
    _draw_status(view, {})


def test_the_page_says_the_status_is_being_re_read_not_waiting_for_a_worker():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_status_while_re_reading, default_timeout=30).run()
    assert not at.exception, at.exception
    assert any("Re-reading the run's status" in e.value for e in at.info)
    assert not any("Waiting for a worker" in e.value for e in at.warning)
    assert [m.value for m in at.metric][0] == "Fit"
