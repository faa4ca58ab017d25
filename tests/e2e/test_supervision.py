"""The launcher keeps each child running on its own: a killed Temporal server comes back under the same
workers and app, a crash-looping worker is given up alone, a worker stopped from outside is not a crash.

One launched stack (two workers, short backoff) for the module; the children are found through the
launcher's own state file (<home>/state/supervisor.json) and checked to be its children before a signal.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from chaos.stack import running_again
from child_process import GIVE_UP_FAILURES
from core.accounts import User
from orchestration.liveness import pid_exists
from tests.e2e.conftest import Stack, train_one

BACKOFF = 0.25  # TRAINEASY_RESTART_BACKOFF for this stack: waits of 0.25, 0.5, 1, 2 s …
ALICE = User("alice")


@pytest.fixture(scope="module")
def supervised(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("supervised"),
        extra_env={"TRAINEASY_WORKERS": "2", "TRAINEASY_RESTART_BACKOFF": str(BACKOFF)},
    )
    pids: list[int] = []
    try:
        stack.wait_ready()
        yield stack
    finally:
        if stack.proc.poll() is None:
            pids = [c["pid"] for c in stack.children().values() if c["pid"]]
        rc = stack.stop()
        print(stack.text())
    # (d) Ctrl-C still stops everything, in order, and `make run` exits 0 even with a child given up
    assert rc == 0, f"launcher did not stop cleanly (rc={rc})"
    text = stack.text()
    assert "Stopped." in text and "Traceback" not in text
    assert pids and not [pid for pid in pids if pid_exists(pid)], "a child outlived the launcher"
    states = {name: c["state"] for name, c in stack.children().items()}
    assert set(states.values()) <= {"stopped", "given-up"}, states


def test_a_killed_temporal_server_is_restarted_under_the_running_workers_and_app(supervised):
    before, _ = train_one(supervised)
    others = {name: supervised.pid_of(name) for name in ("worker-1", "worker-2", "streamlit")}
    temporal = supervised.pid_of("temporal")

    os.kill(temporal, signal.SIGKILL)
    back = supervised.wait_for("temporal", running_again(temporal))

    assert back["restarts"] == 1 and back["failures"] == 1 and back["last_exit"] == -signal.SIGKILL
    assert "temporal failed (killed by SIGKILL); restarting in" in supervised.text()
    assert "temporal is running again" in supervised.text()
    # nothing else was stopped or restarted: the workers and the app rode out the outage
    assert {name: supervised.children()[name]["pid"] for name in others} == others
    assert all(supervised.children()[name]["state"] == "running" for name in others)
    assert supervised.app_healthy()
    # the server kept its SQLite file: the run finished before the kill is still there, and a new one completes
    after, status_before = train_one(supervised, ALICE, also_read=before)
    assert status_before == "completed"
    assert after != before


def test_a_killed_app_is_restarted_on_its_own(supervised):
    others = {name: supervised.pid_of(name) for name in ("temporal", "worker-1", "worker-2")}
    app = supervised.pid_of("streamlit")

    os.kill(app, signal.SIGKILL)
    supervised.wait_for("streamlit", running_again(app))

    assert supervised.app_healthy()
    assert {name: supervised.children()[name]["pid"] for name in others} == others


def test_a_crash_looping_worker_is_given_up_alone(supervised):
    others = {name: supervised.pid_of(name) for name in ("worker-1", "temporal", "streamlit")}
    for n in range(1, GIVE_UP_FAILURES + 1):
        pid = supervised.pid_of("worker-2")
        os.kill(pid, signal.SIGKILL)
        if n < GIVE_UP_FAILURES:
            supervised.wait_for("worker-2", running_again(pid))
    gone = supervised.wait_for("worker-2", lambda c: c["state"] == "given-up", timeout=30)

    assert gone["pid"] is None and gone["last_exit"] == -signal.SIGKILL and gone["failures"] == GIVE_UP_FAILURES
    text = supervised.text()
    log = supervised.home / "logs" / "worker-2.log"
    given_up = [line for line in text.splitlines() if "worker-2 given up" in line]
    assert len(given_up) == 1, text
    assert f"failed {GIVE_UP_FAILURES} times within 10 minutes" in given_up[0] and str(log) in given_up[0]
    # the waits between restarts doubled
    waits = [float(w) for w in re.findall(r"worker-2 failed \(killed by SIGKILL\); restarting in ([\d.]+)s", text)]
    assert waits == [BACKOFF * 2**i for i in range(GIVE_UP_FAILURES - 1)], waits
    # everything else kept serving, untouched
    time.sleep(2)  # a launcher that reacts to the give-up by stopping the rest would do it now
    assert {name: supervised.children()[name]["pid"] for name in others} == others
    assert all(supervised.children()[name]["state"] == "running" for name in others)
    assert supervised.app_healthy()
    train_one(supervised)  # on worker-1


def test_a_worker_stopped_from_outside_is_started_again_and_not_counted(supervised):
    """SIGTERM is how someone stops a worker on purpose: it exits 0, as many times as it is asked."""
    before = supervised.children()["worker-1"]
    for _ in range(GIVE_UP_FAILURES):  # as many stops as failures would give it up
        pid = supervised.pid_of("worker-1")
        os.kill(pid, signal.SIGTERM)
        back = supervised.wait_for("worker-1", running_again(pid))
        assert back["last_exit"] == 0

    assert back["failures"] == 0 and back["restarts"] == before["restarts"] + GIVE_UP_FAILURES
    text = supervised.text()
    assert text.count("worker-1 stopped cleanly (exit code 0) without the launcher asking") == GIVE_UP_FAILURES
    assert "worker-1 given up" not in text and "worker-1 failed" not in text
    train_one(supervised)
