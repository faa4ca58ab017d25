"""core.api_tokens and AccountService's token calls: shown once, stored hashed, revoked at once, audited."""

from __future__ import annotations

from dataclasses import replace

import bcrypt
import pytest

from core import accounts
from core.accounts import Accounts, User
from core.api_tokens import MAX_TOKENS, PREFIX, ApiTokens, TokenError, token_hash
from core.audit import AuditLog
from core.config import load_settings
from core.db import open_db
from core.storage import Storage
from orchestration.account_service import AccountService

_REAL_GENSALT = bcrypt.gensalt


@pytest.fixture
def storage(tmp_path, monkeypatch):
    monkeypatch.setattr(accounts.bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": _REAL_GENSALT(4, prefix))
    s = Storage(tmp_path / "home")
    Accounts(s).add("alice", "alices-password")
    Accounts(s).add("bob", "bobs-password")
    return s


def test_a_token_is_stored_only_as_its_hash_and_resolves_to_its_user(storage):
    tokens = ApiTokens(storage)
    listed, secret = tokens.create("alice", "nightly batch")
    assert secret.startswith(PREFIX) and len(secret) > 40
    with open_db(storage.app_db) as db:
        rows = [dict(r) for r in db.execute("SELECT * FROM api_tokens")]
    assert rows[0]["token_hash"] == token_hash(secret)
    assert secret not in repr(rows)  # the secret itself is nowhere in the database
    found = tokens.user(secret)
    assert found is not None
    user, token_id = found
    assert user == User("alice", ("user",)) and token_id == listed.token_id
    assert tokens.list("alice") == [replace(listed, last_used=tokens.list("alice")[0].last_used)]
    assert tokens.list("alice")[0].last_used is not None  # the use was noted
    assert tokens.list("bob") == []


@pytest.mark.parametrize("secret", [None, "", "te_unknown", "not-even-prefixed", "te_" + "x" * 200])
def test_unknown_or_malformed_tokens_resolve_to_nobody(storage, secret):
    ApiTokens(storage).create("alice", "t")
    assert ApiTokens(storage).user(secret) is None


def test_a_revoked_token_and_a_disabled_account_open_nothing(storage):
    tokens = ApiTokens(storage)
    first, first_secret = tokens.create("alice", "one")
    _, second_secret = tokens.create("alice", "two")
    with pytest.raises(TokenError):
        tokens.revoke("bob", first.token_id)  # another user's token is "no such token"
    assert tokens.user(first_secret) is not None
    tokens.revoke("alice", first.token_id)
    assert tokens.user(first_secret) is None
    assert [t.name for t in tokens.list("alice")] == ["two"]
    with pytest.raises(TokenError, match="revoked already"):
        tokens.revoke("alice", first.token_id)
    Accounts(storage).set_disabled("alice", True)
    assert tokens.user(second_secret) is None
    Accounts(storage).set_disabled("alice", False)
    assert tokens.user(second_secret) is not None


@pytest.mark.parametrize("name", ["", "   ", "x" * 61])
def test_token_names_are_required_and_bounded(storage, name):
    with pytest.raises(TokenError):
        ApiTokens(storage).create("alice", name)


def test_a_user_holds_a_bounded_number_of_live_tokens(storage):
    tokens = ApiTokens(storage)
    made = [tokens.create("alice", f"t{i}")[0] for i in range(MAX_TOKENS)]
    with pytest.raises(TokenError, match="revoke one"):
        tokens.create("alice", "one too many")
    tokens.revoke("alice", made[0].token_id)
    tokens.create("alice", "fits again")


def test_token_calls_of_the_account_service_are_audited_without_the_secret(storage):
    settings = replace(load_settings(), home=storage.root)
    svc = AccountService(settings)
    alice = User("alice", ("user",), "10.0.0.9")
    token, secret = svc.create_api_token(alice, "ci")
    with pytest.raises(TokenError):
        svc.create_api_token(alice, " ")
    svc.revoke_api_token(alice, token.token_id)
    with pytest.raises(TokenError):
        svc.revoke_api_token(User("bob"), token.token_id)
    entries = [(e.actor, e.action, e.object, e.outcome, e.address) for e in AuditLog(storage).query(action_prefix="token.")]
    assert ("alice", "token.create", token.token_id, "ok", "10.0.0.9") in entries
    assert ("alice", "token.create", " ", "refused", "10.0.0.9") in entries
    assert ("alice", "token.revoke", token.token_id, "ok", "10.0.0.9") in entries
    assert ("bob", "token.revoke", token.token_id, "refused", "-") in entries
    assert all(secret not in repr(e) for e in AuditLog(storage).query())
