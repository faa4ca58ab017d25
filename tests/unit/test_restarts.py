"""The launcher's restart bookkeeping (child_process.Restarts): backoff, its reset, giving up, clean stops."""

from __future__ import annotations

import signal

from child_process import BACKOFF_MAX, FAILURE_WINDOW, GIVE_UP_FAILURES, STABLE_AFTER, Restarts, clean_exit, describe_exit


def test_the_wait_doubles_up_to_the_cap_and_starts_again_after_a_stable_run():
    r = Restarts(base=1.0)
    waits = [r.exited(now=float(i), ran=1.0, failed=False) for i in range(9)]
    assert waits == [1, 2, 4, 8, 16, 32, BACKOFF_MAX, BACKOFF_MAX, BACKOFF_MAX]
    assert r.exited(now=100.0, ran=STABLE_AFTER, failed=False) == 1.0


def test_failures_within_the_window_give_the_child_up():
    r = Restarts(base=0.5)
    waits = [r.exited(now=float(i), ran=1.0, failed=True) for i in range(GIVE_UP_FAILURES)]
    assert waits == [0.5, 1.0, 2.0, 4.0, None]


def test_failures_older_than_the_window_are_forgotten():
    r = Restarts(base=1.0)
    for i in range(GIVE_UP_FAILURES - 1):
        assert r.exited(now=float(i), ran=1.0, failed=True) is not None
    late = FAILURE_WINDOW + GIVE_UP_FAILURES
    assert r.exited(now=late, ran=STABLE_AFTER, failed=True) == 1.0  # the old ones left the window
    assert len(r.recent(late)) == 1


def test_clean_stops_are_never_counted():
    r = Restarts(base=1.0)
    assert all(r.exited(now=float(i), ran=1.0, failed=False) is not None for i in range(3 * GIVE_UP_FAILURES))
    assert r.recent(100.0) == []


def test_what_counts_as_a_clean_stop():
    assert clean_exit(0) and clean_exit(-signal.SIGTERM) and clean_exit(-signal.SIGINT)
    assert not clean_exit(1) and not clean_exit(-signal.SIGKILL) and not clean_exit(-signal.SIGSEGV)
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL" and describe_exit(3) == "exit code 3"
