"""core.audit hardening: REPLACE cannot rewrite an entry past the triggers; the documented ACTIONS list
covers every action the code records; the batch leaderboard download is audited and formula-safe."""

from __future__ import annotations

import ast
import csv
import io
import sqlite3
from dataclasses import astuple
from pathlib import Path

import pandas as pd
import pytest

from core.accounts import User
from core.audit import COLUMNS, AuditEntry, AuditLog
from core.audit_actions import ACTIONS
from core.config import PROJECT_ROOT
from core.storage import Storage

PAYLOAD = "Smith\r=cmd|' /C calc'!A0"


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "home")


@pytest.fixture
def audit(storage):
    log = AuditLog(storage)
    for action in ("login.success", "upload", "launch"):
        log.record("alice", action, "x")
    return log


def _raw(storage) -> sqlite3.Connection:
    return sqlite3.connect(storage.app_db, isolation_level=None)


def _forged_row(audit: AuditLog, seq: int) -> tuple:
    old = audit.query(limit=None)[::-1][seq - 1] if seq <= audit.count() else audit.query(limit=1)[0]
    return (seq, old.at, "alice", "-", old.action, old.object, "ok", "forged", old.prev_hash, old.hash)


@pytest.mark.parametrize("verb", ["INSERT OR REPLACE INTO", "REPLACE INTO", "INSERT OR IGNORE INTO", "INSERT INTO"])
@pytest.mark.parametrize("seq", [1, 2, 3])
def test_an_existing_seq_cannot_be_replaced(audit, storage, verb, seq):
    before = audit.query(limit=None)
    with _raw(storage) as db, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(f"{verb} audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", _forged_row(audit, seq))
    assert audit.query(limit=None) == before and audit.verify().ok


def test_a_seq_below_the_last_or_none_is_refused(audit, storage):
    with _raw(storage) as db:
        for seq in (0, -5, None):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(
                    f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                    (seq, *_forged_row(audit, 3)[1:]),
                )
    assert audit.count() == 3 and audit.verify().ok


def test_appending_still_works_and_the_trigger_exists_on_an_old_database(tmp_path):
    """A database created before the trigger gets it the next time the app opens it."""
    from core import audit as audit_module

    storage = Storage(tmp_path / "old")
    old_schema = audit_module.SCHEMA.split("CREATE TRIGGER IF NOT EXISTS audit_log_append_only")[0]
    storage.app_db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(storage.app_db) as db:
        db.executescript(old_schema)
    audit_module._READY.discard(storage.app_db)
    log = AuditLog(storage)
    log.record("alice", "login.success", "alice")
    log.record("alice", "logout", "alice")
    with _raw(storage) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert "audit_log_append_only" in names
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(
                f"REPLACE INTO audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", _forged_row(log, 1)
            )
    assert log.verify().ok and log.count() == 2


# --- every recorded action is documented ----------------------------------------------------------------------
# callee name -> position of the action argument
ACTION_ARG = {"record": 1, "audited": 0, "audit": 0, "_admin": 1, "_do": 1, "_require_admin": 1}


def _source_files() -> list[Path]:
    skip = {".venv", "tests", ".git", "node_modules", "var"}
    return [p for p in PROJECT_ROOT.rglob("*.py") if not skip & set(p.relative_to(PROJECT_ROOT).parts)]


def _callee(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _action_arg(call: ast.Call) -> ast.expr | None:
    name = _callee(call)
    args = call.args
    if name == "run_in_threadpool" and args and isinstance(args[0], ast.Attribute) and args[0].attr == "record":
        name, args = "record", args[1:]
    if name not in ACTION_ARG:
        return None
    keyword = next((k.value for k in call.keywords if k.arg == "action"), None)
    index = ACTION_ARG[name]
    return keyword if keyword is not None else args[index] if len(args) > index else None


def _resolve(expr: ast.expr, scopes: list[ast.FunctionDef | ast.AsyncFunctionDef], where: str) -> set[str]:
    """The action names an expression can take: literals, conditionals, and variables assigned from
    those. A parameter of an enclosing function (`scopes`, innermost first) is resolved at its callers,
    which the scan also visits (empty set here)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        return _resolve(expr.body, scopes, where) | _resolve(expr.orelse, scopes, where)
    if isinstance(expr, ast.Name):
        for func in scopes:
            if expr.id in {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}:
                return set()
            values = [
                n.value
                for n in ast.walk(func)
                if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == expr.id for t in n.targets)
            ]
            if values:
                return set().union(*(_resolve(v, scopes, where) for v in values))
    raise AssertionError(f"{where}: cannot tell which audit action {ast.unparse(expr)!r} is; use a literal")


def recorded_actions() -> dict[str, str]:
    """action -> first place it is recorded, over the whole code base (tests excluded)."""
    found: dict[str, str] = {}
    for path in _source_files():
        tree = ast.parse(path.read_text(), str(path))
        funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or (arg := _action_arg(node)) is None:
                continue
            scopes = sorted(
                (f for f in funcs if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)),
                key=lambda f: (f.end_lineno or f.lineno) - f.lineno,
            )
            where = f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}"
            for action in _resolve(arg, scopes, where):
                found.setdefault(action, where)
    return found


def test_every_recorded_action_is_documented():
    found = recorded_actions()
    # the scan sees the usual suspects, whichever way they are recorded
    assert {
        "launch",
        "download",
        "finish",
        "admin.quota_set",
        "admin.quota_clear",
        "admin.cli_token",
        "login.success",
        "login.failure",
        "login.throttled",
        "logout",
        "audit.export",
    } <= found.keys()
    missing = {a: w for a, w in found.items() if a not in ACTIONS}
    assert not missing, f"recorded but not in core.audit_actions.ACTIONS: {missing}"


def test_documented_quota_actions_are_the_recorded_ones():
    assert "admin.quota_change" not in ACTIONS
    for action in (
        "admin.quota_set",
        "admin.quota_clear",
        "admin.cli_token",
        "codec.decode",
        "codec.encode",
        "page.refused",
        "login.throttled",
        "finish",
    ):
        assert action in ACTIONS


# --- the leaderboard download -----------------------------------------------------------------------------------
def test_leaderboard_download_is_audited_and_formula_safe(monkeypatch):
    import ui.batch_view as batch_view

    calls = []
    monkeypatch.setattr(batch_view, "audit", lambda *a, **k: calls.append((a, k)))
    table = pd.DataFrame({"rank": [1, 2], "configuration": ["Logistic regression", PAYLOAD], "accuracy": [0.9, 0.8]})
    alice = User("alice", address="10.0.0.7")
    build = batch_view.leaderboard_csv(table, "batch-alice-" + "c" * 32, alice)
    assert calls == []  # nothing recorded until the file is produced
    data = build()
    assert calls == [(("download", "leaderboard batch-alice-" + "c" * 32), {"user": alice})]
    assert b"\r=" not in data and b"\"Smith\r'=cmd" in data
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[2] == ["2", "Smith\r'=cmd|' /C calc'!A0", "0.8"]


def test_leaderboard_download_records_in_the_audit_log(monkeypatch, tmp_path):
    """Through ui.runtime.audit into a real log: who, from where, on which batch."""
    import ui.batch_view as batch_view
    import ui.runtime as runtime

    log = AuditLog(Storage(tmp_path))
    monkeypatch.setattr(runtime, "audit_log", lambda: log)
    monkeypatch.setattr(batch_view, "audit", runtime.audit)
    batch_view.leaderboard_csv(pd.DataFrame({"a": [1]}), "batch-alice-" + "d" * 32, User("alice", address="10.0.0.7"))()
    entry = log.query(limit=1)[0]
    assert (entry.actor, entry.action, entry.object, entry.address, entry.outcome) == (
        "alice",
        "download",
        "leaderboard batch-alice-" + "d" * 32,
        "10.0.0.7",
        "ok",
    )


def test_audit_export_with_a_carriage_return_in_a_cell():
    """Entries written by the app are single-line, but the export must hold even for a row someone put
    into the database directly."""
    entry = AuditEntry(7, "2025-01-01T00:00:00.000000+00:00", "alice", "-", "upload", PAYLOAD, "ok", "-x\n@y", "0" * 64, "f" * 64)
    data = AuditLog.export_csv([entry])
    assert data.endswith(b"\r\n") and b"\r=" not in data and b"\n@" not in data and b"\n-" not in data
    assert b"\"Smith\r'=cmd|' /C calc'!A0\"" in data
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[1][5] == "Smith\r'=cmd|' /C calc'!A0" and rows[1][7] == "'-x\n'@y"
    assert astuple(entry)[0] == 7
