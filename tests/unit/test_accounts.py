"""core.accounts: bcrypt credentials, demo accounts on first start, the cookie key."""
from __future__ import annotations

import json
import os

import bcrypt
import pytest

from core import accounts
from core.accounts import (
    User,
    add_account,
    bootstrap_demo_accounts,
    cookie_key,
    credentials_path,
    load_credentials,
    read_demo_accounts,
)
from core.storage import Storage

_REAL_GENSALT = bcrypt.gensalt


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "home")


@pytest.fixture
def cheap_bcrypt(monkeypatch):
    """The lowest bcrypt cost keeps these tests in milliseconds; the hashing itself stays real."""
    monkeypatch.setattr(accounts.bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": _REAL_GENSALT(4, prefix))


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o777


# --- demo accounts ------------------------------------------------------------------------------

def test_bootstrap_creates_admin_alice_and_bob_with_roles(storage, cheap_bcrypt):
    created = bootstrap_demo_accounts(storage)
    assert {name: role for name, (role, _) in created.items()} == {"admin": "admin", "alice": "user", "bob": "user"}
    users = load_credentials(storage)["usernames"]
    assert {name: u["roles"] for name, u in users.items()} == {"admin": ["admin"], "alice": ["user"], "bob": ["user"]}


def test_bootstrap_stores_bcrypt_hashes_not_passwords(storage, cheap_bcrypt):
    created = bootstrap_demo_accounts(storage)
    raw = credentials_path(storage).read_text()
    users = json.loads(raw)["usernames"]
    for name, (_, password) in created.items():
        assert password not in raw
        assert users[name]["password"].startswith("$2")
        assert bcrypt.checkpw(password.encode(), users[name]["password"].encode())


def test_bootstrap_gives_each_account_a_different_password(storage, cheap_bcrypt):
    created = bootstrap_demo_accounts(storage)
    passwords = [pw for _, pw in created.values()]
    assert len(set(passwords)) == 3
    assert all(len(pw) >= 12 for pw in passwords)


def test_bootstrap_writes_owner_only_files(storage, cheap_bcrypt):
    bootstrap_demo_accounts(storage)
    assert _mode(storage.demo_accounts_file) == 0o600
    assert _mode(credentials_path(storage)) == 0o600


def test_second_bootstrap_returns_none_and_keeps_passwords(storage, cheap_bcrypt):
    bootstrap_demo_accounts(storage)
    creds_before = credentials_path(storage).read_text()
    demo_before = storage.demo_accounts_file.read_text()
    assert bootstrap_demo_accounts(storage) is None
    assert credentials_path(storage).read_text() == creds_before
    assert storage.demo_accounts_file.read_text() == demo_before


def test_read_demo_accounts_parses_the_file(storage, cheap_bcrypt):
    created = bootstrap_demo_accounts(storage)
    assert read_demo_accounts(storage) == {name: pw for name, (_, pw) in created.items()}


def test_read_demo_accounts_without_a_file_is_empty(storage):
    assert read_demo_accounts(storage) == {}


def test_read_demo_accounts_ignores_comments_and_malformed_lines(storage):
    storage.root.mkdir(parents=True)
    storage.demo_accounts_file.write_text("# header\n\nalice\tuser\tpw1\nbroken line\nbob\tuser\tpw2\n")
    assert read_demo_accounts(storage) == {"alice": "pw1", "bob": "pw2"}


# --- add_account ---------------------------------------------------------------------------------

def test_add_account_refuses_short_password(storage):
    with pytest.raises(ValueError, match="8 characters"):
        add_account(storage, "carol", "short7!")
    assert not credentials_path(storage).exists()


@pytest.mark.parametrize("role", ["root", "Admin", "", "superuser"])
def test_add_account_refuses_unknown_role(storage, role):
    with pytest.raises(ValueError, match="role"):
        add_account(storage, "carol", "long enough password", role)
    assert not credentials_path(storage).exists()


def test_add_account_refuses_invalid_username(storage, cheap_bcrypt):
    with pytest.raises(ValueError):
        add_account(storage, "../carol", "long enough password")
    assert not credentials_path(storage).exists()


def test_add_account_keeps_existing_accounts(storage, cheap_bcrypt):
    add_account(storage, "carol", "first password", "user")
    add_account(storage, "dave", "second password", "admin")
    users = load_credentials(storage)["usernames"]
    assert set(users) == {"carol", "dave"}
    assert users["dave"]["roles"] == ["admin"]


def test_add_account_uses_the_default_bcrypt_cost(storage):
    add_account(storage, "carol", "long enough password")
    stored = load_credentials(storage)["usernames"]["carol"]["password"]
    assert int(stored.split("$")[2]) >= 12


def test_user_is_admin_only_with_admin_role():
    assert User("admin", ("admin",)).is_admin
    assert not User("alice").is_admin


# --- cookie key -----------------------------------------------------------------------------------

def test_cookie_key_is_generated_once_and_stable(storage, monkeypatch):
    monkeypatch.delenv("TRAINEASY_COOKIE_KEY", raising=False)
    first = cookie_key(storage)
    assert len(first) >= 32
    assert cookie_key(storage) == first


def test_cookie_key_file_is_owner_only(storage, monkeypatch):
    monkeypatch.delenv("TRAINEASY_COOKIE_KEY", raising=False)
    cookie_key(storage)
    assert _mode(storage.auth_dir / "cookie_key") == 0o600


def test_cookie_keys_differ_between_installations(tmp_path, monkeypatch):
    monkeypatch.delenv("TRAINEASY_COOKIE_KEY", raising=False)
    assert cookie_key(Storage(tmp_path / "one")) != cookie_key(Storage(tmp_path / "two"))


def test_cookie_key_environment_variable_overrides(storage, monkeypatch):
    monkeypatch.delenv("TRAINEASY_COOKIE_KEY", raising=False)
    cookie_key(storage)
    monkeypatch.setenv("TRAINEASY_COOKIE_KEY", "from-the-environment")
    assert cookie_key(storage) == "from-the-environment"


def test_cookie_key_from_environment_writes_no_file(storage, monkeypatch):
    monkeypatch.setenv("TRAINEASY_COOKIE_KEY", "from-the-environment")
    cookie_key(storage)
    assert not (storage.auth_dir / "cookie_key").exists()
