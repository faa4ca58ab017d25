"""core.audit: the hash chain verifies, tampering is found (API and CLI), appends from two processes
keep one chain, the table refuses UPDATE and DELETE."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from core.audit import AuditLog, canonical, entry_hash
from core.audit_actions import ACTIONS
from core.config import PROJECT_ROOT
from core.storage import Storage


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "home")


@pytest.fixture
def audit(storage):
    log = AuditLog(storage)
    log.record("alice", "login.success", "alice", address="10.0.0.1")
    log.record(None, "login.failure", "mallory", outcome="refused", address="10.0.0.9", detail="bad password")
    log.record("alice", "upload", "0123456789abcdef", detail="shop.csv")
    log.record("alice", "launch", "train-alice-" + "a" * 32, outcome="refused", detail="over quota")
    log.record("admin", "admin.user_add", "bob")
    return log


def _raw(storage) -> sqlite3.Connection:
    """The database file opened directly, as someone with file access (not the app) would."""
    return sqlite3.connect(storage.app_db, isolation_level=None)


def _cli(storage, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core.audit_cli", *args, "--home", str(storage.root)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_fresh_chain_verifies(audit):
    result = audit.verify()
    assert result.ok and result.checked == 5 and result.broken_seq is None
    assert result.head == audit.query(limit=1)[0].hash


def test_an_empty_log_verifies(storage):
    assert AuditLog(storage).verify().ok


def test_entries_link_to_each_other(audit):
    entries = audit.query()[::-1]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
    first = entries[0]
    body = canonical(first.seq, first.at, first.actor, first.address, first.action, first.object, first.outcome, first.detail)
    assert first.hash == entry_hash("0" * 64, body)


def test_anonymous_actor_and_missing_address_are_a_dash(audit):
    failure = audit.query(action_prefix="login.failure")[0]
    assert failure.actor == "-" and failure.object == "mallory" and failure.outcome == "refused"
    assert audit.record("", "logout").address == "-"


def test_time_is_utc(audit):
    at = datetime.fromisoformat(audit.query(limit=1)[0].at)
    assert at.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - at) < timedelta(minutes=1)


def test_update_and_delete_are_refused_by_the_database(audit, storage):
    with _raw(storage) as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE audit_log SET outcome = 'ok' WHERE seq = 2")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM audit_log WHERE seq = 2")
    assert audit.verify().ok and audit.count() == 5


def test_an_edited_entry_is_found_by_verify_and_the_cli(audit, storage):
    with _raw(storage) as db:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET outcome = 'ok' WHERE seq = 4")  # hide a refusal
    result = audit.verify()
    assert not result.ok and result.broken_seq == 4 and "hash" in result.reason and result.checked == 4
    cli = _cli(storage, "verify")
    assert cli.returncode == 1 and "#4" in cli.stderr


def test_a_deleted_middle_entry_is_found(audit, storage):
    with _raw(storage) as db:
        db.execute("DROP TRIGGER audit_log_no_delete")
        db.execute("DELETE FROM audit_log WHERE seq = 2")
    result = audit.verify()
    assert not result.ok and result.broken_seq == 2 and "missing" in result.reason
    assert _cli(storage, "verify").returncode == 1


def test_a_rewritten_sequence_is_found(audit, storage):
    """Deleting a row and renumbering the rest still breaks the hashes."""
    with _raw(storage) as db:
        db.execute("DROP TRIGGER audit_log_no_delete")
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("DELETE FROM audit_log WHERE seq = 3")
        db.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 3")
        db.execute("UPDATE audit_log SET prev_hash = (SELECT hash FROM audit_log WHERE seq = 2) WHERE seq = 3")
    result = audit.verify()
    assert not result.ok and result.broken_seq == 3


def test_cli_verify_succeeds_on_an_intact_chain(audit, storage):
    cli = _cli(storage, "verify")
    assert cli.returncode == 0 and "intact: 5 entries" in cli.stdout


def test_cli_tail_and_export(audit, storage):
    tail = _cli(storage, "tail", "-n", "2")
    assert tail.returncode == 0
    assert [line.split()[0] for line in tail.stdout.splitlines()] == ["#4", "#5"]
    export = _cli(storage, "export", "--action", "login")
    assert export.returncode == 0
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    assert [r["action"] for r in rows] == ["login.success", "login.failure"]


def test_cli_on_a_missing_database_says_so(tmp_path):
    cli = subprocess.run(
        [sys.executable, "-m", "core.audit_cli", "--home", str(tmp_path / "none"), "verify"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 2 and "no app database" in cli.stderr


def test_concurrent_appends_from_two_processes_keep_one_chain(storage, tmp_path):
    AuditLog(storage)
    go = tmp_path / "go"
    script = (
        "import sys, time; from pathlib import Path; from core.audit import AuditLog; from core.storage import Storage\n"
        "log = AuditLog(Storage(Path(sys.argv[1])))\n"
        "while not Path(sys.argv[3]).exists(): time.sleep(0.005)\n"  # both start appending together
        "for i in range(150): log.record(sys.argv[2], 'launch', str(i))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(storage.root), who, str(go)], cwd=PROJECT_ROOT)
        for who in ("alice", "bob")
    ]
    go.touch()
    assert [p.wait(120) for p in procs] == [0, 0]
    audit = AuditLog(storage)
    result = audit.verify()
    assert result.ok and result.checked == 300
    entries = audit.query(limit=None)[::-1]
    assert [e.seq for e in entries] == list(range(1, 301))
    assert {e.actor for e in entries} == {"alice", "bob"}
    assert [e.at for e in entries] == sorted(e.at for e in entries)


def test_query_filters(audit):
    assert [e.action for e in audit.query(actor="alice")] == ["launch", "upload", "login.success"]
    assert [e.seq for e in audit.query(outcome="refused")] == [4, 2]
    assert [e.action for e in audit.query(action_prefix="admin.")] == ["admin.user_add"]
    assert len(audit.query(limit=2)) == 2
    now = datetime.now(UTC)
    assert len(audit.query(since=now - timedelta(minutes=5))) == 5
    assert audit.query(until=now - timedelta(minutes=5)) == []
    assert audit.query(since=(now + timedelta(days=1)).date()) == []
    assert len(audit.query(since="2000-01-01", until=now + timedelta(minutes=1))) == 5
    assert audit.actors() == ["-", "admin", "alice"]


@pytest.mark.parametrize("action", ["Login", "login..x", "", "login success", ".x", "x" * 65])
def test_bad_action_names_are_refused(audit, action):
    with pytest.raises(ValueError, match="action"):
        audit.record("alice", action)


def test_any_dotted_lower_case_action_is_accepted(audit):
    assert audit.record("alice", "api.token_create").seq == 6
    assert all(audit.record("alice", name).action == name for name in ACTIONS)


def test_bad_outcome_is_refused(audit):
    with pytest.raises(ValueError, match="outcome"):
        audit.record("alice", "logout", outcome="success")


def test_user_text_is_one_bounded_line(audit):
    entry = audit.record("eve\nroot", "login.failure", "x" * 1000, detail="line1\r\nline2\u202e")
    assert "\n" not in entry.actor and "\r" not in entry.detail and "\u202e" not in entry.detail
    assert len(entry.object) == 200
    assert audit.verify().ok


def test_export_is_formula_safe(audit):
    audit.record("alice", "upload", "=cmd|' /C calc'!A0", detail="@SUM(A1)")
    rows = list(csv.reader(io.StringIO(audit.export_csv(audit.query()).decode())))
    assert rows[0][:3] == ["seq", "at", "actor"]
    assert rows[1][5] == "'=cmd|' /C calc'!A0" and rows[1][7] == "'@SUM(A1)"
    assert rows[1][0] == "6"
    assert [r[2] for r in rows[1:]].count("-") == 1  # the anonymous actor stays a plain dash
