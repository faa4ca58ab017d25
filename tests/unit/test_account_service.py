"""orchestration.account_service and its CLI: admin-only, audited, and every change takes effect at once."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import bcrypt
import pytest

from core import accounts
from core.accounts import AccountError, Accounts, User
from core.audit import AuditLog
from core.config import PROJECT_ROOT, load_settings
from core.sessions import Sessions, sign_in
from core.storage import Storage
from orchestration.account_service import AccountService

_REAL_GENSALT = bcrypt.gensalt


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setattr(accounts.bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": _REAL_GENSALT(4, prefix))
    s = replace(load_settings(), home=tmp_path / "home")
    Accounts(Storage(s.home)).add("root", "roots-password", role="admin")
    Accounts(Storage(s.home)).add("carol", "carols-password")
    return s


ROOT, CAROL = User("root", ("admin",), "10.0.0.1"), User("carol", ("user",), "10.0.0.2")


def _signed_in(settings, name: str, password: str) -> str | None:
    """The session token of a sign-in, None when it is refused."""
    return sign_in(Storage(settings.home), settings.session_lifetime, name, password).token


def _actions(settings) -> list[tuple[str, str, str, str]]:
    return [(e.actor, e.action, e.object, e.outcome) for e in reversed(AuditLog(Storage(settings.home)).query())]


def test_admins_add_users_with_a_generated_password_that_works(settings):
    svc = AccountService(settings)
    password = svc.add_user(ROOT, "dave", "user", "d@x")
    assert _signed_in(settings, "dave", password)
    assert ("root", "admin.user_add", "dave", "ok") in _actions(settings)


def test_plain_users_cannot_administer_and_the_attempt_is_audited(settings):
    svc = AccountService(settings)
    for attempt in (
        lambda: svc.add_user(CAROL, "dave"),
        lambda: svc.set_role(CAROL, "carol", "admin"),
        lambda: svc.list_accounts(CAROL),
        lambda: svc.reset_password(CAROL, "root"),
    ):
        with pytest.raises(AccountError, match="administrators"):
            attempt()
    assert (carol := Accounts(Storage(settings.home)).get("carol")) is not None and carol.role == "user"
    assert ("carol", "admin.role_change", "carol", "refused") in _actions(settings)


def test_disabling_signs_the_user_out_at_once_and_re_enabling_lets_them_back(settings):
    svc = AccountService(settings)
    token = _signed_in(settings, "carol", "carols-password")
    svc.set_disabled(ROOT, "carol", True)
    assert Sessions(Storage(settings.home), settings.session_lifetime).user(token) is None
    assert _signed_in(settings, "carol", "carols-password") is None
    svc.set_disabled(ROOT, "carol", False)
    assert _signed_in(settings, "carol", "carols-password")
    with pytest.raises(AccountError, match="your own"):
        svc.set_disabled(ROOT, "root", True)


def test_a_reset_password_replaces_the_old_one_and_ends_sessions(settings):
    svc = AccountService(settings)
    token = _signed_in(settings, "carol", "carols-password")
    new = svc.reset_password(ROOT, "carol")
    assert Sessions(Storage(settings.home), settings.session_lifetime).user(token) is None
    assert _signed_in(settings, "carol", "carols-password") is None
    assert _signed_in(settings, "carol", new)


def test_a_role_change_applies_from_the_next_sign_in(settings):
    svc = AccountService(settings)
    token = _signed_in(settings, "carol", "carols-password")
    svc.set_role(ROOT, "carol", "admin")
    assert Sessions(Storage(settings.home), settings.session_lifetime).user(token) is None
    fresh = _signed_in(settings, "carol", "carols-password")
    assert (user := Sessions(Storage(settings.home), settings.session_lifetime).user(fresh)) is not None and user.is_admin


def test_users_change_their_own_password_and_their_other_sessions_end(settings):
    svc = AccountService(settings)
    here, elsewhere = (_signed_in(settings, "carol", "carols-password") for _ in range(2))
    with pytest.raises(AccountError, match="current password"):
        svc.change_password(CAROL, "wrong", "new-password-1", "new-password-1", here)
    with pytest.raises(AccountError, match="differ"):
        svc.change_password(CAROL, "carols-password", "new-password-1", "new-password-2", here)
    assert svc.change_password(CAROL, "carols-password", "new-password-1", "new-password-1", here) == 1
    sessions = Sessions(Storage(settings.home), settings.session_lifetime)
    assert sessions.user(here) is not None and sessions.user(elsewhere) is None
    assert _signed_in(settings, "carol", "new-password-1")
    assert [a for a in _actions(settings) if a[1] == "password.change"] == [
        ("carol", "password.change", "carol", "refused")
    ] * 2 + [("carol", "password.change", "carol", "ok")]


def test_only_admins_get_a_cli_token(settings):
    svc = AccountService(settings)
    assert svc.cli_token(ROOT)
    with pytest.raises(AccountError):
        svc.cli_token(CAROL)


@pytest.mark.slow
def test_the_cli_adds_disables_and_lists_users(settings):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "orchestration.accounts_cli", "--home", str(settings.home), *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = cli("add", "erin", "--role", "user")
    assert added.returncode == 0, added.stderr
    password = added.stdout.rsplit("password: ", 1)[1].strip()
    assert _signed_in(settings, "erin", password)
    assert cli("disable", "erin").returncode == 0
    assert "erin" in cli("list").stdout and "disabled" in cli("list").stdout
    refused = cli("add", "Bad Name")
    assert refused.returncode == 1 and "user names" in refused.stderr
    assert any(actor.startswith("cli:") and action == "admin.user_disable" for actor, action, _, _ in _actions(settings))


def test_admins_see_and_lift_sign_in_locks_from_the_page_service_and_the_cli(settings):
    svc = AccountService(settings)
    for _ in range(6):
        sign_in(Storage(settings.home), settings.session_lifetime, "root", "guess")
    assert "root" in svc.locked_names(ROOT)
    with pytest.raises(AccountError):
        svc.unlock(CAROL, "root")
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.accounts_cli", "--home", str(settings.home), "unlock", "root"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert svc.locked_names(ROOT) == {}
    assert _signed_in(settings, "root", "roots-password")
    assert any(a[1] == "admin.unlock" and a[3] == "ok" for a in _actions(settings))


def test_the_cli_token_opens_no_browser_session(settings):
    token = AccountService(settings).cli_token(ROOT)
    sessions = Sessions(Storage(settings.home), settings.session_lifetime)
    assert sessions.user(token) is None
    assert (user := sessions.user(token, kinds=("web", "codec"))) is not None and user.name == "root"
