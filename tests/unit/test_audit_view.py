"""ui.audit_view rendered with AppTest on a temporary storage root: filters, table, verify result."""

from __future__ import annotations

import sqlite3

import pytest
from streamlit.testing.v1 import AppTest

from core.audit import AuditLog
from core.storage import Storage


def _page(home: str, actor: str = "admin") -> None:
    from pathlib import Path

    from core.accounts import User
    from core.storage import Storage
    from orchestration.audit_service import AuditService
    from ui.audit_view import show_audit

    show_audit(AuditService(Storage(Path(home))), User(actor, ("admin",), "10.0.0.5"))


@pytest.fixture
def home(tmp_path):
    audit = AuditLog(Storage(tmp_path))
    audit.record("alice", "login.success", "alice", address="10.0.0.1")
    audit.record(None, "login.failure", "[x](http://evil)", outcome="refused", detail="**bold**")
    audit.record("alice", "launch", "train-alice-" + "a" * 32)
    return tmp_path


def _app(home, **kwargs) -> AppTest:
    at = AppTest.from_function(_page, args=(str(home),), kwargs=kwargs, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def test_table_shows_the_newest_entries_first(home):
    at = _app(home)
    table = at.dataframe[0].value
    assert table["action"].tolist() == ["launch", "login.failure", "login.success"]
    assert table["object"][1] == "[x](http://evil)"  # a dataframe cell: shown as text, never as markdown


def test_filters_narrow_the_table(home):
    at = _app(home)
    at.selectbox(key="audit_actor").select("alice").run()
    assert at.dataframe[0].value["action"].tolist() == ["launch", "login.success"]
    at.text_input(key="audit_action").input("login").run()
    assert at.dataframe[0].value["action"].tolist() == ["login.success"]
    at.selectbox(key="audit_actor").select("(anyone)").run()
    at.selectbox(key="audit_outcome").select("refused").run()
    assert at.dataframe[0].value["user"].tolist() == ["-"]
    at.text_input(key="audit_action").input("admin.").run()
    assert not at.dataframe and "No audit entries" in at.info[0].value


def test_verify_button_reports_an_intact_chain_and_is_audited(home):
    at = _app(home, actor="admin")
    at.button(key="audit_verify").click().run()
    assert "Chain intact" in at.success[0].value and "3 entries" in at.success[0].value
    assert AuditLog(Storage(home)).query(limit=1)[0].action == "audit.verify"


def test_verify_button_reports_a_broken_chain(home):
    with sqlite3.connect(Storage(home).app_db, isolation_level=None) as db:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET outcome = 'ok' WHERE seq = 2")
    at = _app(home)
    at.button(key="audit_verify").click().run()
    assert not at.success and "broken at entry \\#2" in at.error[0].value


def test_only_admins_read_verify_or_export_the_log(home):
    from core.accounts import User
    from orchestration.audit_service import AuditService
    from orchestration.errors import Forbidden

    audits, bob = AuditService(Storage(home)), User("bob", ("user",))
    for call in (
        lambda: audits.actors(bob),
        lambda: audits.entries(bob, 10),
        lambda: audits.verify(bob),
        lambda: audits.export_csv(bob, 10),
    ):
        with pytest.raises(Forbidden):
            call()
    assert AuditLog(Storage(home)).count() == 3  # nothing read, nothing recorded
