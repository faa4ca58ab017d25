"""A worker's warm-up: it polls only once its fit fork server serves (workers/worker.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ml import child_spare
from workers.worker import fork_server_ready

ROOT = Path(__file__).resolve().parents[2]

# A fresh process, so its fork server starts cold: its imports and warm-up fits take seconds, and until its first
# spare child is forked, asking for the spare waits for that fork (ml/child_spare.py holds its lock meanwhile).
# Right after warm_up returns, the spare is there already: the question is answered at once.
WARM_UP = """
import gc, time
gc.freeze = lambda: None  # not this test process's objects
from workers.worker import warm_up
warm_up()
from ml import child_spare
started = time.monotonic()
pid = child_spare.spare_pid()
print(pid is not None, time.monotonic() - started)
"""


@pytest.mark.slow  # a fresh worker process's imports and its fork server's warm-up: seconds
def test_warm_up_returns_once_the_fork_server_has_forked_a_spare_child():
    out = subprocess.run([sys.executable, "-c", WARM_UP], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    spare, waited = out.stdout.split()[-2:]
    assert spare == "True" and float(waited) < 0.5, out.stdout + out.stderr


def test_a_fork_server_that_never_answers_is_waited_for_up_to_the_limit(monkeypatch):
    monkeypatch.setattr(child_spare, "refilled", threading.Event())  # no refill has ended
    monkeypatch.setattr(child_spare, "spare_pid", lambda: None)  # nor any spare (another test's may wait here)
    started = time.monotonic()
    assert not fork_server_ready(0.2)
    assert 0.2 <= time.monotonic() - started < 2


def test_a_first_fork_that_failed_ends_the_wait_at_once(monkeypatch):
    def no_fork(ctx):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(child_spare, "refilled", threading.Event())
    monkeypatch.setattr(child_spare, "fork", no_fork)
    monkeypatch.setattr(child_spare, "_spare", None)
    child_spare.refill(None)  # type: ignore[arg-type]  # the stand-in fork takes no context
    started = time.monotonic()
    assert not fork_server_ready(30)
    assert time.monotonic() - started < 2


STOP = """
import os, time
from pathlib import Path
from ml import child_fit, child_spare
from multiprocessing import forkserver
child_fit.start()
assert child_spare.refilled.wait(60)
pids = forkserver._forkserver._forkserver_pid, child_spare.spare_pid()
child_fit.stop()
time.sleep(0.5)  # the spare reads the end of its pipe and exits (a zombie until the init process reaps it)
def runs(pid):
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()
print(*(runs(pid) for pid in pids))  # while this process still lives: no exit of its own has ended them
"""


@pytest.mark.slow  # a fork server's start: seconds
def test_a_stopping_worker_ends_its_fork_server_and_its_waiting_child():
    out = subprocess.run([sys.executable, "-c", STOP], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"], out.stdout + out.stderr


def _fork_servers(home: Path) -> list[int]:
    """Live multiprocessing fork servers started for the storage root `home` (their environment names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"multiprocessing.forkserver" in (entry / "cmdline").read_bytes():
                if f"TRAINEASY_HOME={home}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return found


@pytest.mark.slow  # a fresh worker process warms up its fork server before it connects: seconds
def test_a_worker_that_stops_on_an_error_ends_its_fork_server_with_it(tmp_path):
    """No Temporal at the address: the worker warms up, fails to connect and exits 1, and its fork server is gone
    when it has exited (left alone, it would notice only later, after an interpreter teardown of its own)."""
    env = {**os.environ, "TRAINEASY_HOME": str(tmp_path), "TEMPORAL_ADDRESS": "127.0.0.1:9"}  # port 9: nothing listens
    log = tmp_path / "worker.log"
    with log.open("w") as out:  # a file, not a pipe: the fork server inherits it, and a pipe would wait for its end
        rc = subprocess.run([sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=out, stderr=out, timeout=120).returncode
    assert rc == 1 and "stopped" in log.read_text(), log.read_text()
    assert _fork_servers(tmp_path) == []


@pytest.mark.slow  # a fresh worker process warms up its fork server: seconds
def test_a_worker_stopped_with_ctrl_c_during_its_warm_up_ends_its_fork_server_with_it(tmp_path):
    """Ctrl-C before the worker set its signal handlers, once its fork server runs: the fork server is gone when the
    worker has exited. The Ctrl-C lands in the warm-up (exit 130) or, if the fork server was quick, in the connect
    that follows, which then fails (exit 1): the old code left the fork server behind either way."""
    env = {**os.environ, "TRAINEASY_HOME": str(tmp_path), "TEMPORAL_ADDRESS": "127.0.0.1:9"}
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while not _fork_servers(tmp_path) and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        assert _fork_servers(tmp_path), "the worker started no fork server: " + log.read_text()
        worker.send_signal(signal.SIGINT)
        rc = worker.wait(timeout=120)
    assert rc in (130, 1), log.read_text()
    assert _fork_servers(tmp_path) == []
