"""What a user reads during an outage: the launcher's given-up Temporal says an admin must act (banner and
control reasons), a refusing probe is down with its words for admins, reasons stay short, a started run waits
to continue, and the audit tells an unreachable engine in plain words."""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.service import RPCError, RPCStatusCode

import ui.runtime
from core.accounts import User
from core.audit import AuditLog
from core.storage import Storage
from orchestration.auditing import ABANDONED, audited
from orchestration.contracts import STAGES, StageProgress
from orchestration.engine_watch import EngineState, EngineWatch, temporal_given_up
from orchestration.health import TemporalCheck
from orchestration.known_views import Known
from orchestration.views import RunView
from ui.engine_banner import admin_detail, banner_text
from ui.outage import as_of_text, blocked_reason
from ui.run_text import frozen_label, worker_wait_text

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
DOWN = TemporalCheck(False, None, "RPCError: tcp connect error")


def _supervisor(storage: Storage, temporal_state: str, launcher_pid: int) -> None:
    storage.supervisor_state.parent.mkdir(parents=True, exist_ok=True)
    state = {"launcher_pid": launcher_pid, "children": {"temporal": {"state": temporal_state, "restarts": 5}}}
    storage.supervisor_state.write_text(json.dumps(state))


def test_temporal_is_given_up_only_when_a_live_launcher_says_so(tmp_path):
    storage = Storage(tmp_path)
    assert not temporal_given_up(storage)  # no launcher here
    _supervisor(storage, "restarting", os.getpid())
    assert not temporal_given_up(storage)
    _supervisor(storage, "given-up", os.getpid())
    assert temporal_given_up(storage)
    _supervisor(storage, "given-up", 2**22 + 12345)  # a launcher that is gone: its file is stale
    assert not temporal_given_up(storage)


def test_a_given_up_temporal_tells_an_admin_to_restart_the_stack_instead_of_promising_recovery():
    gave_up = [False]
    watch = EngineWatch(lambda: asyncio.sleep(0, DOWN), given_up=lambda: gave_up[0])
    state = watch.record(DOWN)
    assert "recovers by itself" in banner_text(state, T0) and "make run" not in (blocked_reason(state) or "")
    gave_up[0] = True
    state = watch.record(DOWN)
    assert state.given_up
    for text in (banner_text(state, T0), blocked_reason(state) or ""):
        assert "make run" in text and "recovers by itself" not in text and "by itself" not in text
    assert not watch.record(TemporalCheck(True, 2.0)).given_up


@pytest.mark.parametrize("check", [TemporalCheck(False, 3.0, "refused: namespace not found"), DOWN])
def test_any_check_that_is_not_reachable_is_down_and_admins_see_its_words(check):
    state = EngineWatch(lambda: asyncio.sleep(0, check)).record(check)
    assert state.down and admin_detail(state) == f"Last probe: {check.error}"
    assert admin_detail(EngineState()) is None


def test_reasons_and_as_of_lines_are_short_and_do_not_repeat_the_banner():
    state = EngineState(False, T0, "x", T0, 1)
    reason = blocked_reason(state) or ""
    assert reason and "since" not in reason and len(reason) < 80
    assert blocked_reason(EngineState()) is None
    assert as_of_text(Known([], T0 + timedelta(seconds=5))) == "As of 12:00:05 UTC."
    assert "not reachable" not in as_of_text(Known([], T0, final=True))


def _view(attempt: int, first_stage: str) -> RunView:
    stages = [StageProgress(name) for name in STAGES]
    stages[0].status = first_stage
    return RunView("train-alice-" + "a" * 32, "running", "knn", "d", "y", None, 3.0, "load", 0.0, stages, attempt=attempt)


def test_a_started_run_waits_to_continue_and_a_new_one_to_start():
    assert "start as soon as" in worker_wait_text(_view(1, "pending"))
    for started in (_view(2, "pending"), _view(1, "done")):
        text = worker_wait_text(started)
        assert "continues where it was" in text and "will start" not in text


class _Launcher:
    def __init__(self, audit: AuditLog, error: BaseException) -> None:
        self.audit, self.error = audit, error

    @audited("launch")
    async def start(self, user: User, what: str) -> str:
        raise self.error


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b""), "Temporal is not reachable"),
        (RuntimeError("Failed client connect: Server connection error"), "Temporal is not reachable"),
        (asyncio.CancelledError(), ABANDONED),
        (KeyError("x"), "KeyError"),
    ],
)
def test_the_audit_tells_an_unreachable_engine_in_plain_words(tmp_path, error, detail):
    audit = AuditLog(Storage(tmp_path))
    with pytest.raises(type(error)):
        asyncio.run(_Launcher(audit, error).start(User("alice"), "a run"))
    (entry,) = audit.query()
    assert (entry.outcome, entry.detail) == ("error", detail)
    assert "RPCError" not in entry.detail and "CancelledError" not in entry.detail


def test_the_facade_s_names_are_imported_from_where_they_are_defined():
    """One rule: import a name from its defining module (ui.runtime exports what it defines, nothing else)."""
    for path in [*ROOT.glob("*.py"), *ROOT.glob("app_pages/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("tests/**/*.py")]:
        for names in re.findall(r"^from ui\.runtime import (.+)$", path.read_text(), re.M):
            assert not {"SyncService", "Unavailable"} & {n.strip() for n in names.split(",")}, path
    defined = {n for n, v in vars(ui.runtime).items() if getattr(v, "__module__", None) == "ui.runtime" and not n.startswith("_")}
    assert set(ui.runtime.__all__) == defined | {"NOTICE_KEY"}


def test_live_numbers_read_during_an_outage_say_they_are_not_live():
    assert frozen_label("Elapsed", True) == "Elapsed (when last read)" and frozen_label("Elapsed", False) == "Elapsed"
