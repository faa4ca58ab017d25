"""API tokens in a real browser: created on the Account page (shown once), used over HTTP, revoked there."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from core.accounts import Accounts
from core.audit import AuditLog
from core.storage import Storage
from tests.e2e.conftest import go, sign_in, wait_for_app


def test_a_token_made_on_the_account_page_opens_the_api_until_revoked(stack, new_page):
    Accounts(Storage(stack.home)).add("tokenuser", "tokenuser-password")
    page = new_page()
    sign_in(page, stack, "tokenuser", "tokenuser-password")
    go(page, "Account")
    # what the user has of their quota: the Train page's line, here too (nothing stored yet)
    expect(page.get_by_text(re.compile(r"0 of \d+ runs in flight · .* · 0 MB of \d+ MB stored"))).to_be_visible()
    expect(page.get_by_text("No API tokens yet.")).to_be_visible()
    page.get_by_role("textbox", name="Token name").fill("nightly batch")
    page.get_by_role("button", name="Create token").click()
    wait_for_app(page)
    expect(page.get_by_text("Copy it now: it is shown only this once.")).to_be_visible()
    secret = page.get_by_test_id("stCode").inner_text().strip()
    assert re.fullmatch(r"te_[A-Za-z0-9_\-]{43}", secret), secret

    me = requests.get(f"{stack.api_url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert me.status_code == 200 and me.json()["user"] == "tokenuser"
    token_id = me.json()["token_id"]

    page.reload()  # shown once: gone after the page is drawn again, listed without its secret
    wait_for_app(page)
    expect(page.get_by_text(re.compile(rf"nightly batch · id {token_id} · created .* · last used"))).to_be_visible()
    assert secret not in page.content()

    page.get_by_role("button", name="Revoke").click()
    wait_for_app(page)
    expect(page.get_by_text("No API tokens yet.")).to_be_visible()
    gone = requests.get(f"{stack.api_url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert gone.status_code == 401
    actions = {(e.action, e.object) for e in AuditLog(Storage(stack.home)).query(actor="tokenuser")}
    assert {("token.create", token_id), ("token.revoke", token_id)} <= actions


def test_the_api_reference_renders_without_a_cdn(stack, new_page):
    page = new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(stack.api_url) else None)
    page.goto(f"{stack.api_url}/docs")
    expect(page.get_by_role("heading", name=re.compile("TrainEasy API"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/api/v1/temporal/train", exact=True)).to_be_visible()
    assert outside == [], f"the docs page fetched from elsewhere: {outside}"
