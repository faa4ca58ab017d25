"""Every page gates itself: a raw websocket request naming a page, sent as the very first request to a
freshly started server, gets the sign-in prompt and nothing else; and a signed-in user's first request runs
the page through app.py's navigation (there is no `pages/` folder, which would put Streamlit in its old
multipage mode, running page scripts without app.py, until app.py had run once)."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from core.accounts import Accounts
from core.audit import AuditLog
from core.config import PROJECT_ROOT, load_settings
from core.sessions import SESSION_COOKIE, Sessions
from core.storage import Storage
from launcher import app_command
from tests.e2e.conftest import free_port
from ui.nav import PAGES

PROMPT = [("heading", "Sign in to TrainEasy"), ("link_button", "Sign in")]


def elements(port: int, page_name: str, cookie: str | None = None) -> list[tuple[str, str]]:
    """(element type, its main text) of everything one script run draws, as the browser would get it."""
    drawn: list[tuple[str, str]] = []
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else None
    with connect(
        f"ws://127.0.0.1:{port}/_stcore/stream",
        subprotocols=[Subprotocol("streamlit")],
        additional_headers=headers,
        open_timeout=20,
    ) as ws:
        msg = BackMsg()
        msg.rerun_script.page_name = page_name
        msg.rerun_script.query_string = ""
        ws.send(msg.SerializeToString())
        while True:
            forward = ForwardMsg()
            data = ws.recv(timeout=30)
            assert isinstance(data, bytes), "Streamlit sends its messages as binary frames"
            forward.ParseFromString(data)
            kind = forward.WhichOneof("type")
            if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                element = forward.delta.new_element
                which = element.WhichOneof("type")
                assert which is not None
                body = getattr(element, which)
                drawn.append((which, getattr(body, "body", "") or getattr(body, "label", "")))
            elif kind == "script_finished":
                return drawn


@pytest.fixture
def fresh_app(tmp_path):
    """The web server exactly as the launcher starts it (launcher.app_command), on a free port, never
    visited before; no Temporal (the gate must not need it)."""
    home = tmp_path / "home"
    Accounts(Storage(home)).add("alice", "alices-password")
    port = free_port()
    env = {
        **os.environ,
        "TRAINEASY_HOME": str(home),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TRAINEASY_APP_PORT": str(port),
        "TRAINEASY_APP_ADDRESS": "127.0.0.1",
    }
    env.pop("FORWARDED_ALLOW_IPS", None)
    argv, extra = app_command(replace(load_settings(), home=home, app_port=port, app_address="127.0.0.1"))
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env={**env, **extra}, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(port, proc, tmp_path / "streamlit.log")
        yield port, home
    finally:
        proc.terminate()
        proc.wait(30)


def _wait_healthy(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"streamlit not healthy:\n{log.read_text()}")


def test_every_page_asked_for_first_and_raw_shows_only_the_sign_in_prompt(fresh_app):
    port, _ = fresh_app
    # pages other than home first: each is a first request to a server that never ran app.py
    names = [p.file.removeprefix("app_pages/").removesuffix(".py") for key, p in PAGES.items() if key != "home"]
    for name in [*names, "home", ""]:
        assert elements(port, name) == PROMPT, name


def test_a_signed_in_user_asking_for_admin_raw_is_refused(fresh_app):
    port, home = fresh_app
    token = Sessions(Storage(home), timedelta(hours=1)).create("alice")
    drawn = elements(port, "admin", cookie=token)
    # through app.py: her sidebar (no Admin link), the engine banner (no Temporal here), then the page's refusal
    assert ("page_link", "Admin") not in drawn and ("page_link", "Account") in drawn, drawn
    assert drawn[-1] == ("alert", "This page is for administrators only."), drawn
    assert [kind for kind, _ in drawn].count("alert") == 2, drawn
    assert [(e.actor, e.action, e.outcome) for e in AuditLog(Storage(home)).query()] == [("alice", "page.refused", "refused")]


def test_a_revoked_session_cookie_is_refused(fresh_app):
    port, home = fresh_app
    sessions = Sessions(Storage(home), timedelta(hours=1))
    token = sessions.create("alice")
    sessions.revoke(token)
    assert elements(port, "datasets", cookie=token) == PROMPT


def test_page_loads_without_a_session_go_to_the_login_page(fresh_app):
    port, _ = fresh_app
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/models?x=1", timeout=10) as resp:
        assert resp.url == f"http://127.0.0.1:{port}/auth/login?next=/models%3Fx%3D1"
        page = resp.read().decode()
    assert 'name="password"' in page and "Sign in to TrainEasy" in page


def _login_page(opener, port: int, next_url: str = "/") -> str:
    with opener.open(f"http://127.0.0.1:{port}/auth/login?next={next_url}", timeout=10) as resp:
        page = resp.read().decode()
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the login page has no CSRF field"
    return found.group(1)


def _post_login(opener, port: int, form: dict[str, str]):
    data = urllib.parse.urlencode(form).encode()
    try:
        return opener.open(urllib.request.Request(f"http://127.0.0.1:{port}/auth/login", data=data), timeout=20)
    except urllib.error.HTTPError as err:
        return err


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _browser():
    jar = http.cookiejar.CookieJar()
    return jar, urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)


def test_login_sets_an_httponly_session_cookie_and_goes_back_only_to_this_app(fresh_app):
    port, home = fresh_app
    jar, opener = _browser()
    csrf = _login_page(opener, port)
    resp = _post_login(
        opener, port, {"csrf": csrf, "next": "//evil.example/x", "username": "alice", "password": "alices-password"}
    )
    assert resp.status == 303 and resp.headers["Location"] == "/"  # never another site
    cookie = next(h for h in resp.headers.get_all("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    assert (user := Sessions(Storage(home), timedelta(hours=1)).user(token)) is not None and user.name == "alice"
    assert [e.action for e in AuditLog(Storage(home)).query()][:1] == ["login.success"]


def test_login_without_the_form_token_is_refused(fresh_app):
    port, _ = fresh_app
    _, opener = _browser()
    resp = _post_login(opener, port, {"csrf": "forged", "username": "alice", "password": "alices-password"})
    assert resp.status == 400
    assert SESSION_COOKIE not in (resp.headers.get("set-cookie") or "")


def test_guessing_is_throttled_over_http_and_audited(fresh_app):
    port, home = fresh_app
    _, opener = _browser()
    statuses = []
    for _ in range(7):
        csrf = _login_page(opener, port)
        resp = _post_login(opener, port, {"csrf": csrf, "username": "alice", "password": "wrong-password"})
        statuses.append(resp.status)
        body = resp.read().decode()
    assert statuses == [401] * 5 + [429, 429]
    assert "Too many failed sign-ins. Try again in" in body
    entries = AuditLog(Storage(home)).query()
    actions = [e.action for e in entries]
    # a flood of refused attempts is a few entries, not one write per request
    assert actions.count("login.failure") == 5 and actions.count("login.throttled") == 1
    assert {e.address for e in entries} == {"127.0.0.1"}


def test_a_forged_forwarded_address_is_not_believed(fresh_app):
    port, home = fresh_app
    _, opener = _browser()
    opener.addheaders = [("X-Forwarded-For", "6.6.6.6")]
    csrf = _login_page(opener, port)
    _post_login(opener, port, {"csrf": csrf, "username": "alice", "password": "wrong-password"})
    assert [e.address for e in AuditLog(Storage(home)).query()] == ["127.0.0.1"]


def test_a_login_posted_from_another_origin_is_refused(fresh_app):
    port, _ = fresh_app
    _, opener = _browser()
    csrf = _login_page(opener, port)
    opener.addheaders = [("Origin", "http://127.0.0.1:9999")]  # another port of the same host
    resp = _post_login(opener, port, {"csrf": csrf, "username": "alice", "password": "alices-password"})
    assert resp.status == 403 and SESSION_COOKIE not in (resp.headers.get("set-cookie") or "")


def test_anonymous_uploads_are_refused_and_no_page_may_be_framed(fresh_app):
    port, _ = fresh_app
    request = urllib.request.Request(f"http://127.0.0.1:{port}/_stcore/upload_file/abc/1", data=b"x" * 1000, method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/login", timeout=10) as resp:
        assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in resp.headers["Content-Security-Policy"]


def test_the_codec_endpoint_decodes_for_admins_only(fresh_app):
    port, home = fresh_app
    Accounts(Storage(home)).add("root", "roots-password", role="admin")
    sessions = Sessions(Storage(home), timedelta(hours=1))
    user, admin = sessions.create("alice"), sessions.create("root")

    one_payload = b'{"payloads": [{"metadata": {"encoding": "YmluYXJ5L3BsYWlu"}, "data": "eA=="}]}'

    def decode(headers: dict[str, str], verb: str = "decode", body: bytes = b'{"payloads": []}') -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/codec/{verb}",
            data=body,
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    assert decode({}) == 401
    assert decode({"Cookie": f"{SESSION_COOKIE}={user}"}) == 403
    assert decode({"Authorization": f"Bearer {user}"}) == 403
    assert decode({"Cookie": f"{SESSION_COOKIE}={admin}"}) == 200
    assert decode({"Authorization": f"Bearer {admin}"}) == 200
    sessions.revoke(admin)
    assert decode({"Authorization": f"Bearer {admin}"}) == 401
    # the Admin page's CLI token decodes, but cannot encode (mint input a worker accepts) nor open a page
    cli = sessions.create("root", kind="codec")
    assert decode({"Authorization": f"Bearer {cli}"}) == 200
    assert decode({"Authorization": f"Bearer {cli}"}, "encode", one_payload) == 401
    assert decode({}, "encode", one_payload) == 401
    # encoding nothing (the CLI's `workflow query` asks that first) mints nothing: anyone may
    assert decode({"Authorization": f"Bearer {cli}"}, "encode") == 200
    assert elements(port, "admin", cookie=cli) == PROMPT
    for _ in range(20):  # a flood of anonymous calls
        assert decode({}) == 401
    refused = [(e.actor, e.action) for e in AuditLog(Storage(home)).query(action_prefix="codec") if e.outcome == "refused"]
    # one entry per caller, action and reason (every 30 s), however many calls: anonymous decode and encode, alice
    assert sorted(refused) == [("-", "codec.decode"), ("-", "codec.encode"), ("alice", "codec.decode")]


@pytest.mark.parametrize("key", ["batch", "runs", "models"])
def test_a_signed_in_users_first_request_to_a_page_runs_it_through_the_app(fresh_app, key):
    """A bookmarked or shared link (a run's page) as the very first request after a restart: the page runs through
    app.py's navigation, as any other time. With a `pages/` folder beside app.py, Streamlit took its old multipage
    mode until app.py had run once, and ran the page alone: without the navigation app.py sets up, the Batch page
    failed ("This app has encountered an error") on its own links, and on Start batch."""
    port, home = fresh_app
    token = Sessions(Storage(home), timedelta(hours=1)).create("alice")
    drawn = elements(port, PAGES[key].url_path, cookie=token)
    assert [kind for kind, _ in drawn if kind == "exception"] == [], drawn
    assert ("heading", {"batch": "Batch training", "runs": "Runs", "models": "Models"}[key]) in drawn, drawn
