"""ui.runtime.SyncService: explicit calls only, coroutines run on the client's loop (no server)."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import cast

from core.accounts import User
from orchestration.service import TrainEasyService
from ui.sync_service import SyncService

ROOT = Path(__file__).resolve().parents[2]


def test_pages_call_only_what_the_facade_defines():
    called = set()
    for path in [*ROOT.glob("app_pages/*.py"), *ROOT.glob("ui/*.py")]:
        called |= set(re.findall(r"\bsvc\.([A-Za-z_]\w*)", path.read_text()))
    assert called, "the pattern still finds the pages' calls"
    assert not {name for name in called if not callable(getattr(SyncService, name, None))}
    assert not hasattr(SyncService, "__getattr__")


class _Service:
    async def list_runs(self, user):
        return asyncio.get_running_loop(), user

    def list_datasets(self, user):
        return threading.current_thread(), user


def test_coroutines_run_on_the_clients_loop_and_sync_calls_here(loop):
    svc = SyncService(loop, cast(TrainEasyService, _Service()))  # a stand-in that says where each call ran
    alice = User("alice")
    assert svc.list_runs(alice) == (loop, alice)
    assert svc.list_datasets(alice) == (threading.current_thread(), alice)
