"""core.sessions: server-side sessions, revocation, expiry and the sign-in throttle."""

from __future__ import annotations

from datetime import timedelta

import bcrypt
import pytest

from core import accounts, sessions
from core.accounts import Accounts
from core.sessions import WRONG, LoginThrottle, Sessions, sign_in
from core.storage import Storage

_REAL_GENSALT = bcrypt.gensalt
HOURS = timedelta(hours=12)


@pytest.fixture
def storage(tmp_path, monkeypatch):
    monkeypatch.setattr(accounts.bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": _REAL_GENSALT(4, prefix))
    monkeypatch.setattr(accounts, "_DUMMY_HASH", bcrypt.hashpw(b"x", _REAL_GENSALT(4)))
    s = Storage(tmp_path / "home")
    Accounts(s).add("carol", "carols-password")
    Accounts(s).add("root", "roots-password", role="admin")
    return s


def test_sign_in_opens_a_session_that_names_the_user(storage):
    result = sign_in(storage, HOURS, "Carol ", "carols-password", "10.0.0.1")
    assert result.token and result.user is not None and result.user.name == "carol"
    assert (user := Sessions(storage, HOURS).user(result.token)) is not None and user.name == "carol"
    assert Sessions(storage, HOURS).user(result.token + "x") is None
    assert result.token.encode() not in storage.app_db.read_bytes()  # only its hash is stored


def test_wrong_password_and_unknown_user_get_the_same_message(storage):
    assert sign_in(storage, HOURS, "carol", "nope", "10.0.0.1").message == WRONG
    assert sign_in(storage, HOURS, "nobody", "nope", "10.0.0.1").message == WRONG


def test_a_revoked_session_is_refused(storage):
    token = sign_in(storage, HOURS, "carol", "carols-password").token
    Sessions(storage, HOURS).revoke(token)
    assert Sessions(storage, HOURS).user(token) is None


def test_sessions_expire(storage):
    token = sign_in(storage, timedelta(seconds=-1), "carol", "carols-password").token
    assert Sessions(storage, HOURS).user(token) is None


def test_disabling_a_user_ends_their_sessions_and_sign_ins(storage):
    token = sign_in(storage, HOURS, "carol", "carols-password").token
    Accounts(storage).set_disabled("carol", True)
    assert Sessions(storage, HOURS).user(token) is None
    assert "disabled" in sign_in(storage, HOURS, "carol", "carols-password").message


def test_revoke_user_keeps_the_callers_own_session(storage):
    a = sign_in(storage, HOURS, "carol", "carols-password").token
    b = sign_in(storage, HOURS, "carol", "carols-password").token
    assert Sessions(storage, HOURS).revoke_user("carol", keep=a) == 1
    assert Sessions(storage, HOURS).user(a) is not None
    assert Sessions(storage, HOURS).user(b) is None


def test_repeated_failures_lock_the_name_even_with_the_right_password(storage):
    for _ in range(sessions.FREE_FAILURES["user"]):
        assert sign_in(storage, HOURS, "carol", "guess", "10.0.0.1").message == WRONG
    locked = sign_in(storage, HOURS, "carol", "guess", "10.0.0.2")
    assert locked.locked_until is not None and "Try again in" in locked.message
    right = sign_in(storage, HOURS, "carol", "carols-password", "10.0.0.3")
    assert right.token is None and "Try again in" in right.message


def test_unknown_names_lock_like_known_ones(storage):
    for _ in range(sessions.FREE_FAILURES["user"]):
        sign_in(storage, HOURS, "nobody", "guess", "10.0.0.1")
    assert "Try again in" in sign_in(storage, HOURS, "nobody", "guess", "10.0.0.1").message


def test_locks_grow_with_each_further_failure(storage):
    throttle = LoginThrottle(storage)
    ends = [throttle.failure("carol", "") for _ in range(sessions.FREE_FAILURES["user"] + 3)]
    locks = [e for e in ends if e is not None]
    assert len(locks) == 3 and locks[0] < locks[1] < locks[2]


def test_one_address_guessing_many_names_is_locked(storage):
    for i in range(sessions.FREE_FAILURES["addr"] + 1):
        sign_in(storage, HOURS, f"name{i}", "guess", "10.9.9.9")
    assert "Try again in" in sign_in(storage, HOURS, "carol", "carols-password", "10.9.9.9").message
    assert sign_in(storage, HOURS, "carol", "carols-password", "10.0.0.1").token is not None


def test_a_success_clears_the_names_count(storage):
    for _ in range(sessions.FREE_FAILURES["user"] - 1):
        sign_in(storage, HOURS, "carol", "guess")
    assert sign_in(storage, HOURS, "carol", "carols-password").token
    for _ in range(sessions.FREE_FAILURES["user"] - 1):
        assert sign_in(storage, HOURS, "carol", "guess").message == WRONG


def test_parallel_guesses_are_checked_one_at_a_time_and_never_beyond_the_free_failures(storage):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: sign_in(storage, HOURS, "carol", "guess", "10.0.0.1"), range(60)))
    checked = [r for r in results if r.message == WRONG]
    assert 1 <= len(checked) <= sessions.FREE_FAILURES["user"]
    assert all(r.token is None for r in results)


def test_a_crashed_check_frees_the_name(storage, monkeypatch):
    def boom(*_):
        raise OSError("disk")

    monkeypatch.setattr(Accounts, "verify_password", boom)
    with pytest.raises(OSError):
        sign_in(storage, HOURS, "carol", "carols-password")
    monkeypatch.undo()
    assert sign_in(storage, HOURS, "carol", "carols-password").token


def test_an_admin_unlocks_a_locked_name(storage):
    for _ in range(sessions.FREE_FAILURES["user"] + 1):
        sign_in(storage, HOURS, "root", "guess", "10.0.0.1")
    throttle = LoginThrottle(storage)
    assert "root" in throttle.locked_names()
    assert throttle.unlock("root")
    assert sign_in(storage, HOURS, "root", "roots-password", "10.0.0.2").token


def test_a_cli_decode_token_is_no_browser_session(storage):
    token = Sessions(storage, HOURS).create("root", kind="codec")
    assert Sessions(storage, HOURS).user(token) is None
    assert (user := Sessions(storage, HOURS).user(token, kinds=("web", "codec"))) is not None and user.name == "root"
