"""orchestration.liveness: a worker counts as alive only with a fresh beat and, on this host, a live process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from core.storage import Storage, write_atomic
from orchestration.liveness import (
    ALIVE_WINDOW,
    QueueLoad,
    WorkerBeat,
    beat_path,
    live_workers,
    serving,
    slots_on,
    this_host,
)

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
QUEUES = (QueueLoad("tq", 1, 1), QueueLoad("tq-io", 2, 0))


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "home")


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_beat(storage: Storage, identity: str, *, pid: int | None = None, age: float = 0.5, host=None, queues=QUEUES):
    name, ns = host or this_host()
    beat = WorkerBeat(identity, pid or os.getpid(), name, ns, NOW - timedelta(minutes=5), NOW - timedelta(seconds=age), queues)
    path = beat_path(storage, identity)
    write_atomic(path, beat.to_json())
    return path


def identities(storage: Storage) -> list[str]:
    return [w.identity for w in live_workers(storage, NOW)]


def test_a_fresh_beat_of_a_live_process_is_alive_with_its_slots(storage):
    write_beat(storage, "a@here")
    [worker] = live_workers(storage, NOW)
    assert worker.identity == "a@here" and worker.pid == os.getpid()
    load = worker.load("tq")
    assert load == QueueLoad("tq", 1, 1) and load.free == 0
    assert worker.age_s(NOW) == pytest.approx(0.5)


def test_a_stale_beat_is_dead_and_its_file_is_removed(storage):
    fresh = write_beat(storage, "fresh@here", age=ALIVE_WINDOW - 1)
    stale = write_beat(storage, "stale@here", age=ALIVE_WINDOW + 1)
    assert identities(storage) == ["fresh@here"]
    assert fresh.exists() and not stale.exists()


def test_a_killed_process_on_this_host_is_dead_at_once_even_with_a_fresh_beat(storage):
    path = write_beat(storage, "killed@here", pid=dead_pid(), age=0.1)
    assert identities(storage) == []
    assert not path.exists()


def test_on_another_host_only_the_beat_counts(storage):
    name, ns = this_host()
    write_beat(storage, "w@elsewhere", pid=dead_pid(), host=("elsewhere", ns))
    write_beat(storage, "old@elsewhere", pid=os.getpid(), host=("elsewhere", ns), age=ALIVE_WINDOW + 1)
    # same host name, another pid namespace (a container sharing the host's name): its pids mean nothing here
    write_beat(storage, "w@container", pid=dead_pid(), host=(name, "pid:[1]"))
    assert identities(storage) == ["w@container", "w@elsewhere"]


def test_unreadable_files_never_count_and_old_leftovers_are_removed(storage):
    write_beat(storage, "good@here")
    folder = storage.workers_state
    (folder / "garbage.json").write_text("{not json")
    (folder / "naive.json").write_text(beat_path(storage, "good@here").read_text().replace("+00:00", ""))
    leftover = folder / "x.json.123.456.tmp"  # a writer killed between writing and renaming
    leftover.write_text("{}")
    old = time.time() - ALIVE_WINDOW - 5
    os.utime(leftover, (old, old))
    assert identities(storage) == ["good@here"]
    assert not leftover.exists()
    assert (folder / "garbage.json").exists()  # young: it may be someone's file being replaced


def test_no_folder_means_no_worker(storage):
    assert live_workers(storage, NOW) == []


def test_identities_become_safe_file_names(storage):
    assert beat_path(storage, "12@host/../x").parent == storage.workers_state
    assert beat_path(storage, "12@host/../x").name == "12@host_.._x.json"


def test_slots_and_serving_count_per_queue(storage):
    write_beat(storage, "a@here")
    write_beat(storage, "b@here", queues=(QueueLoad("tq-io", 2, 1),))
    alive = live_workers(storage, NOW)
    assert slots_on(alive, "tq") == 1 and slots_on(alive, "tq-io") == 4 and slots_on(alive, "other") == 0
    assert [w.identity for w in serving(alive, "tq")] == ["a@here"]
