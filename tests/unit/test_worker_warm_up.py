"""A worker's warm-up: it polls only once its fit fork server serves (workers/worker.py)."""

from __future__ import annotations

import subprocess
import sys
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


def test_without_a_spare_the_wait_ends_at_its_limit(monkeypatch):
    monkeypatch.setattr(child_spare, "spare_pid", lambda: None)  # as after a fork that failed
    started = time.monotonic()
    assert not fork_server_ready(0.2)
    assert 0.2 <= time.monotonic() - started < 2
