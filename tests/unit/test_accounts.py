"""core.accounts: accounts in the app database, bcrypt hashes, roles, disabling, demo accounts."""

from __future__ import annotations

import json
import os
import statistics
import time

import bcrypt
import pytest

from core import accounts
from core.accounts import AccountError, Accounts, bootstrap_demo_accounts, read_demo_accounts
from core.storage import Storage

_REAL_GENSALT = bcrypt.gensalt


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "home")


@pytest.fixture
def cheap_bcrypt(monkeypatch):
    """The lowest bcrypt cost keeps these tests in milliseconds; the hashing itself stays real."""
    monkeypatch.setattr(accounts.bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": _REAL_GENSALT(4, prefix))


def test_bootstrap_creates_admin_alice_and_bob_with_roles_once(storage, cheap_bcrypt):
    created = bootstrap_demo_accounts(storage)
    assert created is not None
    assert {name: role for name, (role, _) in created.items()} == {"admin": "admin", "alice": "user", "bob": "user"}
    assert {a.name: a.role for a in Accounts(storage).list()} == {"admin": "admin", "alice": "user", "bob": "user"}
    assert bootstrap_demo_accounts(storage) is None
    assert read_demo_accounts(storage) == {name: pw for name, (_, pw) in created.items()}
    assert os.stat(storage.demo_accounts_file).st_mode & 0o777 == 0o600


def test_passwords_are_stored_as_bcrypt_hashes(storage, cheap_bcrypt):
    created = bootstrap_demo_accounts(storage)
    assert created is not None
    raw = storage.app_db.read_bytes()
    for name, (_, password) in created.items():
        assert password.encode() not in raw
        assert (account := Accounts(storage).verify_password(name, password)) is not None and account.name == name
        assert Accounts(storage).verify_password(name, password + "x") is None


def test_unknown_user_and_wrong_password_both_fail(storage, cheap_bcrypt):
    Accounts(storage).add("carol", "a-long-password")
    assert Accounts(storage).verify_password("nobody", "a-long-password") is None
    assert Accounts(storage).verify_password("carol", "") is None


@pytest.mark.parametrize("name", ["", "A", "x" * 40, "../etc", "bob smith", "1abc"])
def test_bad_user_names_are_refused(storage, cheap_bcrypt, name):
    with pytest.raises(AccountError):
        Accounts(storage).add(name, "a-long-password")


def test_short_passwords_and_taken_names_and_bad_roles_are_refused(storage, cheap_bcrypt):
    acc = Accounts(storage)
    with pytest.raises(AccountError, match="10"):
        acc.add("carol", "short")
    acc.add("carol", "a-long-password")
    with pytest.raises(AccountError, match="taken"):
        acc.add("carol", "another-password")
    with pytest.raises(AccountError, match="role"):
        acc.add("dave", "a-long-password", role="root")


def test_long_passwords_work(storage, cheap_bcrypt):
    acc = Accounts(storage)
    acc.add("carol", "p" * 100)
    assert acc.verify_password("carol", "p" * 100) is not None


def test_the_last_enabled_admin_cannot_be_disabled_or_demoted(storage, cheap_bcrypt):
    acc = Accounts(storage)
    acc.add("root", "a-long-password", role="admin")
    with pytest.raises(AccountError, match="no enabled administrator"):
        acc.set_disabled("root", True)
    with pytest.raises(AccountError, match="no enabled administrator"):
        acc.set_role("root", "user")
    acc.add("second", "a-long-password", role="admin")
    acc.set_disabled("root", True)
    assert (root := acc.get("root")) is not None and root.disabled


def test_legacy_credentials_file_is_imported(storage, cheap_bcrypt):
    storage.auth_dir.mkdir(parents=True)
    hashed = bcrypt.hashpw(b"legacy-password", bcrypt.gensalt(4)).decode()
    (storage.auth_dir / "credentials.json").write_text(
        json.dumps({"usernames": {"old": {"email": "o@x", "password": hashed, "roles": ["admin"]}}})
    )
    acc = Accounts(storage)
    assert (old := acc.get("old")) is not None and old.role == "admin"
    assert acc.verify_password("old", "legacy-password") is not None


@pytest.mark.slow
def test_unknown_names_take_as_long_as_known_ones(storage):
    """No user enumeration by timing: an unknown name pays the same bcrypt check (real cost here)."""
    acc = Accounts(storage)
    acc.add("carol", "a-long-password")
    known: list[float] = []
    unknown: list[float] = []
    for _ in range(7):  # interleaved, so machine load hits both alike
        for name, times in (("carol", known), ("mallory", unknown)):
            start = time.perf_counter()
            acc.verify_password(name, "wrong-password")
            times.append(time.perf_counter() - start)
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.6 < ratio < 1.6, (statistics.median(known), statistics.median(unknown))
