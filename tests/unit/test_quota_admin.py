"""The admin's quota panel, run by Streamlit's AppTest against the real service's quota calls (no Temporal:
nobody has a run in flight, so nothing needs describing)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from core.config import load_settings
from core.quotas import Quotas
from core.storage import Storage

SCRIPT = """
import asyncio
import inspect
from dataclasses import replace
from pathlib import Path

from core.accounts import User
from core.config import load_settings
from orchestration.service import TrainEasyService
from ui.quota_admin import show_quota_admin


class Sync:   # what ui.runtime.SyncService does, without a Temporal client
    def __init__(self, svc):
        self.svc = svc

    def __getattr__(self, name):
        attr = getattr(self.svc, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **k: asyncio.run(attr(*a, **k))
        return attr


settings = replace(load_settings(), home=Path(HOME))
show_quota_admin(Sync(TrainEasyService(None, settings)), User(NAME, ROLES), ["alice", "bob"])
"""


@pytest.fixture
def home(tmp_path):
    return tmp_path


@pytest.fixture
def quotas(home):
    settings = replace(load_settings(), home=home)
    return Quotas(Storage(home), settings)


def _app(home, tmp_path, username: str, roles: list[str]) -> AppTest:
    script = tmp_path / "quota_admin_page.py"
    script.write_text(
        SCRIPT.replace("HOME", repr(str(home))).replace("NAME", repr(username)).replace("ROLES", repr(tuple(roles)))
    )
    return AppTest.from_file(str(script), default_timeout=30).run()


def test_admin_sees_usage_and_sets_and_clears_overrides(home, tmp_path, quotas):
    quotas.set_override("bob", max_stored_mb=5)
    at = _app(home, tmp_path, "admin", ["admin"])
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["user"]) == ["alice", "bob"]
    assert list(table["runs in flight"]) == ["0 / 3", "0 / 3"]
    assert list(table["stored"]) == ["0.0 / 2,048 MB", "0.0 / 5 MB *"]

    at.number_input(key="quota_admin_max_runs_in_flight_alice").set_value(7)
    at.number_input(key="quota_admin_launches_per_minute_alice").set_value(10)  # the default: no override
    at.button(key="quota_admin_save_alice").click()
    at.run()
    assert not at.exception and not at.error
    assert "Limits of alice saved." in [s.value for s in at.success]
    limits = quotas.limits_for("alice")
    assert limits.max_runs_in_flight == 7 and limits.overridden == {"max_runs_in_flight"}
    assert at.dataframe[0].value["runs in flight"][0] == "0 / 7 *"

    at.selectbox(key="quota_admin_user").set_value("bob").run()
    assert at.number_input(key="quota_admin_max_stored_mb_bob").value == 5
    at.button(key="quota_admin_reset_bob").click()
    at.run()
    assert not at.exception
    assert quotas.limits_for("bob") == quotas.defaults() and not quotas.limits_for("bob").overridden
    assert at.number_input(key="quota_admin_max_stored_mb_bob").value == 2048


def test_a_user_who_is_not_admin_gets_a_refusal_and_no_data(home, tmp_path, quotas):
    at = _app(home, tmp_path, "alice", ["user"])
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Only an administrator can see or change")
    assert not at.dataframe
