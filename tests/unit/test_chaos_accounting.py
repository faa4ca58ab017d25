"""`make chaos`'s accounting: which outcomes are completed, failed in plain words or lost, and what the table says."""

from __future__ import annotations

import pytest

from chaos.accounting import Outcome, Tally, plain, render, tally, verdict

HOME = "/tmp/traineasy-chaos-abc"
PLAIN = "The server cannot write to its storage (permission denied); ask an admin to check the storage folder's permissions."


def run(status: str, models: int = 0, message: str | None = None, seen_by: tuple[str, ...] = ()) -> Outcome:
    return Outcome("train-alice-0a1b", "alice", status, models, message, seen_by)


def test_a_completed_run_with_one_model_is_completed():
    assert verdict(run("completed", models=1), HOME) == ("completed", None)


@pytest.mark.parametrize("models", [0, 2])
def test_a_completed_run_without_exactly_one_model_is_lost(models):
    kind, why = verdict(run("completed", models=models), HOME)
    assert kind == "lost" and f"{models} model versions" in (why or "")


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_a_run_ended_with_a_plain_message_is_failed_not_lost(status):
    assert verdict(run(status, message=PLAIN), HOME) == ("failed", None)


@pytest.mark.parametrize(
    "message",
    [
        None,
        "  ",
        "PermissionError: [Errno 13] Permission denied",
        "Activity task failed (ApplicationError)",
        f"Permission denied: '{HOME}/users/alice/models/x'",
        "could not write /var/lib/traineasy/users/alice/models",
        'Traceback (most recent call last):\n  File "x.py", line 1',
    ],
)
def test_a_run_failed_without_a_plain_message_is_lost(message):
    assert verdict(run("failed", message=message), HOME)[0] == "lost"


@pytest.mark.parametrize("status", ["running", "terminated", "timed_out", "unreadable"])
def test_a_run_that_did_not_end_plainly_is_lost(status):
    assert verdict(run(status, message="at stage fit"), HOME)[0] == "lost"


def test_a_completed_run_another_user_can_see_is_lost():
    kind, why = verdict(run("completed", models=1, seen_by=("bob",)), HOME)
    assert kind == "lost" and "visible to bob" in (why or "")


def test_plain_allows_a_sentence_with_slashes_and_numbers():
    assert plain("Quota: you have 3 of 3 runs in flight (queued or running); a slot frees up / soon.", HOME)
    assert plain(PLAIN, HOME)


def test_the_tally_counts_each_outcome_once_and_names_the_lost():
    outcomes = [run("completed", 1), run("completed", 1), run("failed", message=PLAIN), run("running")]
    t = tally("kill-worker", outcomes, HOME)
    assert (t.launched, t.completed, t.failed, t.lost) == (4, 2, 1, 1)
    assert len(t.problems) == 1 and "still running at the deadline" in t.problems[0]


def test_a_scenario_passes_only_with_nothing_lost_serving_and_no_problem():
    assert Tally("x", launched=1, completed=1, serving=True).passed
    assert not Tally("x", launched=1, completed=1, serving=False).passed
    assert not Tally("x", launched=1, completed=1, serving=None).passed  # serving never checked
    assert not Tally("x", launched=1, lost=1, serving=True).passed
    assert not Tally("x", serving=True, problems=["the save was tried 5 times"]).passed
    assert not Tally("x", skipped="needs root and chattr").passed


def test_the_table_shows_each_scenario_its_problems_and_the_total_time():
    good = Tally("many-users", launched=50, completed=50, serving=True, notes=["50 launches accepted"])
    bad = tally("kill-worker", [run("running")], HOME)
    bad.serving = False
    skipped = Tally("storage", skipped="needs root and chattr")
    text = render([good, bad, skipped], 123.4)
    lines = text.splitlines()
    assert lines[0].split() == ["scenario", "launched", "completed", "failed", "lost", "serving", "after", "result"]
    assert lines[2].split() == ["many-users", "50", "50", "0", "0", "yes", "pass"]
    assert lines[3].split() == ["kill-worker", "1", "0", "0", "1", "NO", "FAIL"]
    assert lines[4].split()[:6] == ["storage", "0", "0", "0", "0", "-"] and "skipped: needs root and chattr" in lines[4]
    assert "[kill-worker]  ! lost: train-alice-0a1b still running at the deadline" in text
    assert "[many-users]  · 50 launches accepted" in text
    assert lines[-1] == "1 of 3 scenarios passed; total time 123 s"
