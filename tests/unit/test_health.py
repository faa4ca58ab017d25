"""orchestration.health: each check's state and reason, the overall rule, and a report with no secrets in it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.config import load_settings
from core.db import open_db
from core.storage import Storage, write_atomic
from orchestration.health import TemporalCheck, check_health, overall, temporal_check
from orchestration.health_checks import (
    DEGRADED,
    DOWN,
    OK,
    Check,
    check_database,
    check_storage,
    check_supervisor,
    check_workers,
    counted,
    size_text,
    workers_text,
)
from orchestration.liveness import QueueLoad, WorkerBeat, this_host

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def beat(identity: str, *queues: QueueLoad) -> WorkerBeat:
    host, ns = this_host()
    return WorkerBeat(identity, os.getpid(), host, ns, NOW, NOW - timedelta(seconds=1.5), queues)


def test_the_overall_state_is_the_worst_check():
    ok, slow, dead = Check("a", OK, ""), Check("b", DEGRADED, ""), Check("c", DOWN, "")
    assert overall([ok, ok]) == OK
    assert overall([ok, slow]) == DEGRADED
    assert overall([slow, dead, ok]) == DOWN


def test_temporal_is_down_when_unreachable_and_degraded_when_slow():
    assert temporal_check(TemporalCheck(False, None, "refused")).state == DOWN
    assert "not reachable" in temporal_check(TemporalCheck(False)).reason
    assert temporal_check(TemporalCheck(True, 1500.0)).state == DEGRADED
    fast = temporal_check(TemporalCheck(True, 3.2))
    assert fast.state == OK and "3 ms" in fast.reason


def test_workers_none_is_down_one_queue_unserved_is_degraded():
    check, rows = check_workers([], "tq", "tq-io", NOW)
    assert check.state == DOWN and rows == []
    check, _ = check_workers([beat("a", QueueLoad("tq", 1, 0))], "tq", "tq-io", NOW)
    assert check.state == DEGRADED and "data tasks" in check.reason
    check, _ = check_workers([beat("a", QueueLoad("tq-io", 2, 0))], "tq", "tq-io", NOW)
    assert check.state == DEGRADED and "training" in check.reason


def test_workers_rows_and_free_training_slots():
    workers = [beat("a", QueueLoad("tq", 1, 1), QueueLoad("tq-io", 2, 0)), beat("b", QueueLoad("tq", 1, 0), QueueLoad("x", 9, 0))]
    check, rows = check_workers(workers, "tq", "tq-io", NOW)
    assert check.state == OK and check.reason == "2 worker processes alive; 1 of 2 training slots free."
    assert [(r.worker, r.queue, r.slots, r.busy, r.last_beat_s) for r in rows] == [
        ("a", "training", 1, 1, 1.5),
        ("a", "data tasks", 2, 0, 1.5),
        ("b", "training", 1, 0, 1.5),
    ]  # another app's queue is left out


def test_storage_writable_with_free_space_low_space_degraded_unwritable_down(tmp_path):
    storage = Storage(tmp_path)
    check, free, state_ok = check_storage(storage)
    assert check.state == OK and free is not None and free > 0 and state_ok
    assert list(tmp_path.iterdir()) == []  # the probe file is removed
    check, _, _ = check_storage(storage, low_space=2**62)
    assert check.state == DEGRADED and "free in the data folder" in check.reason and "GiB" in check.reason
    blocked = tmp_path / "a-file"
    blocked.write_text("x")  # a "folder" that is a file: nothing can be written under it, even as root
    check, free, _ = check_storage(Storage(blocked))
    assert check.state == DOWN and free is None
    assert str(blocked) not in check.reason and "cannot be written (not a directory)" in check.reason


def test_database_missing_damaged_and_sound(tmp_path):
    storage = Storage(tmp_path)
    assert check_database(storage).state == DEGRADED
    assert not storage.app_db.exists()  # the check does not create it
    storage.app_db.write_bytes(b"this is not a database" * 100)
    assert check_database(storage).state == DOWN
    storage.app_db.unlink()
    with open_db(storage.app_db) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    check = check_database(storage)
    assert check.state == OK and "quick check" in check.reason


def _supervisor_state(storage: Storage, launcher_pid: int, **states: str) -> None:
    since = "2026-11-26T12:00:00+00:00"
    children = {name: {"state": s, "pid": 1, "since": since, "restarts": 2, "log": "/x"} for name, s in states.items()}
    write_atomic(storage.supervisor_state, json.dumps({"launcher_pid": launcher_pid, "children": children}).encode())


def test_supervisor_given_up_child_is_flagged_and_a_gone_launcher_supervises_nothing(tmp_path):
    storage = Storage(tmp_path)
    check, rows = check_supervisor(storage)
    assert check.state == OK and rows == [] and "Not started by the launcher" in check.reason
    _supervisor_state(storage, os.getpid(), temporal="running", **{"worker-1": "running", "worker-2": "given-up"})
    check, rows = check_supervisor(storage)
    assert check.state == DEGRADED and "worker-2" in check.reason and "worker-1" not in check.reason
    assert "logs/worker-2.log" in check.reason and "<name>" not in check.reason
    assert [(r.name, r.state) for r in rows] == [("temporal", "running"), ("worker-1", "running"), ("worker-2", "given-up")]
    _supervisor_state(storage, os.getpid(), temporal="restarting", **{"worker-1": "running"})
    assert check_supervisor(storage)[0].state == DEGRADED
    _supervisor_state(storage, os.getpid(), temporal="running", **{"worker-1": "running"})
    assert check_supervisor(storage)[0] == Check("supervisor", OK, "The launcher runs 2 processes; none is failing.")
    _supervisor_state(storage, 2**22 + 7, **{"worker-2": "given-up"})  # a launcher that is gone
    check, rows = check_supervisor(storage)
    assert check.state == OK and rows == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


async def test_with_temporal_unreachable_the_report_is_down_and_holds_no_path(tmp_path, monkeypatch):
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    settings = replace(load_settings(), home=tmp_path / "home", temporal_port=_closed_port())
    settings.home.mkdir()
    report = await check_health(settings)
    assert report.state == DOWN and report.exit_code == 2
    assert not report.temporal.reachable
    assert [c.name for c in report.checks if c.state == DOWN] == ["temporal", "workers"]
    text = json.dumps(report.to_json())
    assert str(settings.home) not in text and str(tmp_path) not in text
    assert not (settings.home / "secrets").exists() and [p.name for p in settings.home.iterdir()] == []


def test_a_state_folder_that_cannot_be_written_is_told_and_workers_are_unknown_not_gone(tmp_path, monkeypatch):
    """The hostile finding: `chattr +i <home>/state/workers` made health say "No worker process is running"
    while the storage check said writable."""
    from chaos.immutable import NEEDS, chattr_works, immutable

    if not chattr_works(tmp_path):
        pytest.skip(f"an unwritable folder cannot be made here: {NEEDS}")
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    storage = Storage(tmp_path)
    storage.workers_state.mkdir(parents=True)
    assert check_storage(storage)[2] is True
    with immutable(storage.workers_state):
        check, _, state_ok = check_storage(storage)
        report = asyncio.run(check_health(replace(load_settings(), home=tmp_path, temporal_port=_closed_port())))
    assert not state_ok and check.state == DEGRADED
    assert "the state folder cannot be written; worker liveness is unknown" in check.reason
    workers = next(c for c in report.checks if c.name == "workers")
    assert workers.state == DEGRADED and "No worker process is running" not in workers.reason
    assert "worker liveness is unknown" in workers.reason


def test_alive_workers_with_temporal_down_are_waiting_not_ok():
    workers = [beat("a", QueueLoad("tq", 1, 0), QueueLoad("tq-io", 2, 0)), beat("b", QueueLoad("tq", 1, 0))]
    check, _ = check_workers(workers, "tq", "tq-io", NOW, temporal_up=False)
    assert check.state == DEGRADED
    assert check.reason == "2 worker processes alive but waiting for Temporal: they take work once it answers."


def test_counts_and_sizes_are_worded_one_way():
    assert (counted(1, "worker"), counted(2, "worker")) == ("1 worker", "2 workers")
    assert (workers_text(1), workers_text(3)) == ("1 worker process", "3 worker processes")
    assert size_text(1024**3) == "1.0 GiB" and size_text(5 * 1024**2) == "5.0 MiB" and size_text(2048) == "2.0 KiB"


def test_a_server_that_refuses_is_down_with_a_plain_reason_and_the_probe_never_raises():
    from temporalio.service import RPCError, RPCStatusCode

    from orchestration.health import classify, probe_temporal

    for status, words in [
        (RPCStatusCode.UNAUTHENTICATED, "credentials"),
        (RPCStatusCode.PERMISSION_DENIED, "permission denied"),
        (RPCStatusCode.NOT_FOUND, "does not exist"),
    ]:
        probe = classify(RPCError("no", status, b""), "ns")
        assert probe.reachable and not probe.usable and words in (probe.refused or "")
        check = temporal_check(probe)
        assert check.state == DOWN and check.reason.startswith("Temporal answers but refuses: ")
    unreachable = classify(RPCError("down", RPCStatusCode.UNAVAILABLE, b""), "ns")
    assert not unreachable.reachable and unreachable.refused is None

    class Refusing:  # a client whose server answers every call with PERMISSION_DENIED
        namespace = "ns"

        class workflow_service:
            @staticmethod
            async def get_system_info(*_a, **_k):
                raise RPCError("denied", RPCStatusCode.PERMISSION_DENIED, b"")

    probe = asyncio.run(probe_temporal(Refusing()))  # type: ignore[arg-type]
    assert probe.reachable and probe.refused and "permission denied" in probe.refused


def test_a_user_who_is_not_an_admin_reads_one_sentence_without_launcher_details(tmp_path):
    from orchestration.health import HealthReport, user_summary

    def report(state: str, *checks: Check) -> HealthReport:
        return HealthReport(state, checks, TemporalCheck(True, 3.0), (), 0, None, (), "2026-11-26T12:00:00+00:00")

    given_up = Check("supervisor", DEGRADED, "Given up after failing again and again: worker-2 (its log: logs/worker-2.log).")
    text = user_summary(report(DEGRADED, Check("temporal", OK, "x"), given_up))
    assert text.startswith("Training is running at reduced capacity")
    for detail in ("worker-2", "logs/", "launcher", "Given up"):
        assert detail not in text
    down = user_summary(report(DOWN, Check("temporal", DOWN, "Temporal is not reachable: RPCError"), Check("workers", DOWN, "x")))
    assert "cannot be reached" in down and "RPCError" not in down and "paused" not in down
    assert user_summary(report(OK, Check("temporal", OK, "x"))) == "Training is available."


def test_the_liveness_note_is_built_from_the_beat_settings(monkeypatch):
    import importlib

    import orchestration.liveness as liveness
    import ui.health_view as health_view

    monkeypatch.setattr(liveness, "BEAT_INTERVAL", 3.0)
    monkeypatch.setattr(liveness, "ALIVE_WINDOW", 12.0)
    try:
        note = importlib.reload(health_view).LIVENESS_NOTE
    finally:
        monkeypatch.undo()
        importlib.reload(health_view)
    assert "every 3 s" in note and "silent for 12 s" in note


def test_a_rows_free_slots_are_its_queue_loads():
    workers = [beat("a", QueueLoad("tq", 2, 3), QueueLoad("tq-io", 2, 1))]
    _, rows = check_workers(workers, "tq", "tq-io", NOW)
    assert [r.free for r in rows] == [QueueLoad("tq", 2, 3).free, QueueLoad("tq-io", 2, 1).free] == [0, 1]


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            RuntimeError(
                "Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError("
                '"tcp connect error", 127.0.0.1:7999, Os { code: 111, kind: ConnectionRefused, message: "Connection refused" }))'
            ),
            "connection refused (nothing listens at the address)",
        ),
        (TimeoutError(), "no answer within 2 s"),
        (ValueError("something new"), "ValueError: something new"),
    ],
)
def test_the_admin_reads_the_cause_of_an_unreachable_server_in_plain_words(error, said):
    """The hostile re-check: the JSON and the admin banner carried the SDK's raw text, cut mid-string."""
    from orchestration.health import error_line

    assert error_line(error) == said
