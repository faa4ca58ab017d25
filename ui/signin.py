"""The HTTP side of signing in, served by the Streamlit server itself (st.App routes): a plain login
page that sets an HttpOnly session cookie, sign-out, and a redirect of page loads without a session.

A form outside Streamlit's websocket is what lets the server set a real HttpOnly, SameSite cookie;
the Streamlit pages then only read it (ui/auth.py).
"""

from __future__ import annotations

import html
import re
import secrets
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.audit import AuditLog
from core.config import Settings
from core.sessions import SESSION_COOKIE, Sessions, sign_in
from core.storage import Storage

CSRF_COOKIE = "traineasy_csrf"
# where a sign-in may send the browser back to: a path of this app, never another site
_NEXT = re.compile(r"/(?!/)[A-Za-z0-9_\-/]*(\?[A-Za-z0-9_\-=&%.]*)?")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · TrainEasy</title>
<style>
 body {{ font-family: system-ui, sans-serif; background: #f6f7fb; margin: 0; display: grid; place-items: center;
        min-height: 100vh; color: #1f2430; }}
 main {{ background: #fff; padding: 2rem 2.2rem; border-radius: 12px; box-shadow: 0 2px 14px #0001; width: 20rem; }}
 h1 {{ font-size: 1.35rem; margin: 0 0 1.2rem; }}
 label {{ display: block; font-size: .9rem; margin: .8rem 0 .3rem; }}
 input {{ width: 100%; box-sizing: border-box; padding: .55rem .6rem; border: 1px solid #c8ccd6; border-radius: 6px;
         font-size: 1rem; }}
 button {{ margin-top: 1.3rem; width: 100%; padding: .6rem; border: 0; border-radius: 6px; background: #ff4b4b;
          color: #fff; font-size: 1rem; cursor: pointer; }}
 .msg {{ padding: .6rem .7rem; border-radius: 6px; font-size: .9rem; margin-bottom: .6rem; }}
 .error {{ background: #fdecec; color: #8a1c1c; }} .info {{ background: #eaf2fd; color: #1c3f8a; }}
 p.hint {{ font-size: .8rem; color: #666; margin-top: 1.2rem; }}
</style></head>
<body><main>
<h1>Sign in to TrainEasy</h1>
{message}
<form method="post" action="/auth/login">
 <input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
 <label for="username">Username</label>
 <input id="username" name="username" autocomplete="username" value="{username}" required autofocus maxlength="64">
 <label for="password">Password</label>
 <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="128">
 <button type="submit">Sign in</button>
</form>
<p class="hint">First start? The demo accounts were printed by <code>make run</code> and are kept in
demo-accounts.txt in TrainEasy's data folder (<code>var/</code> unless TRAINEASY_HOME names another).</p>
</main></body></html>"""


def safe_next(raw: str | None) -> str:
    return raw if raw and len(raw) <= 300 and _NEXT.fullmatch(raw) else "/"


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def same_origin(request: Request) -> bool:
    """A browser names the page that sent a POST; another site or another port of this host is refused
    (cookies are shared across the ports of a host, so SameSite alone does not stop those)."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


class OncePer:
    """True at most once per `seconds` per key (in this process): a flood of refused sign-ins for one
    name becomes a few audit entries, not thousands of writes."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.last = seconds, dict[str, float]()

    def __call__(self, key: str) -> bool:
        now = time.monotonic()
        if now - self.last.get(key, -self.seconds) < self.seconds:
            return False
        if len(self.last) > 10_000:
            self.last.clear()
        self.last[key] = now
        return True


class SignInRoutes:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = Storage(settings.home)
        self._throttled_audit = OncePer(30.0)

    def sessions(self) -> Sessions:
        return Sessions(self.storage, self.settings.session_lifetime)

    def _cookie(
        self, response: Response, name: str, value: str, max_age: int | None, samesite: Literal["lax", "strict"] = "lax"
    ) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite=samesite, path="/", secure=self.settings.tls)

    def _form(self, next_url: str, message: str = "", kind: str = "error", username: str = "", status: int = 200) -> HTMLResponse:
        csrf = secrets.token_urlsafe(24)
        box = f'<div class="msg {kind}" role="alert">{html.escape(message)}</div>' if message else ""
        response = HTMLResponse(
            _PAGE.format(message=box, csrf=csrf, next=html.escape(next_url), username=html.escape(username)), status_code=status
        )
        response.headers["Cache-Control"] = "no-store"
        self._cookie(response, CSRF_COOKIE, csrf, None, samesite="strict")
        return response

    async def login_page(self, request: Request) -> Response:
        next_url = safe_next(request.query_params.get("next"))
        token = request.cookies.get(SESSION_COOKIE)
        signed_in = bool(token) and await run_in_threadpool(self.sessions().user, token, ("web",)) is not None
        if signed_in:
            return RedirectResponse(next_url, status_code=303)
        note = "You are signed out." if "signed_out" in request.query_params else ""
        response = self._form(next_url, note, kind="info")
        if token:  # a stale or revoked session: forget it
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def login(self, request: Request) -> Response:
        if not same_origin(request):
            return self._form("/", "Sign in from this app's own page.", status=403)
        form = await request.form()
        next_url = safe_next(str(form.get("next") or "/"))
        username = str(form.get("username") or "")[:64]
        sent, expected = str(form.get("csrf") or ""), request.cookies.get(CSRF_COOKIE) or ""
        if not expected or not secrets.compare_digest(sent, expected):
            return self._form(next_url, "The form expired. Please sign in again.", username=username, status=400)
        address = client_address(request)
        result = await run_in_threadpool(
            sign_in, self.storage, self.settings.session_lifetime, username, str(form.get("password") or "")[:1024], address
        )
        audit = AuditLog(self.storage)
        actor = result.user.name if result.user else (username.strip().lower()[:64] or "-")
        if result.token is None:
            action = "login.throttled" if result.locked_until else "login.failure"
            if action == "login.failure" or self._throttled_audit(actor):
                await run_in_threadpool(audit.record, actor, action, actor, "refused", address, result.message)
            return self._form(next_url, result.message, username=username, status=429 if result.locked_until else 401)
        await run_in_threadpool(audit.record, actor, "login.success", actor, "ok", address)
        response = RedirectResponse(next_url, status_code=303)
        self._cookie(response, SESSION_COOKIE, result.token, int(self.settings.session_lifetime.total_seconds()))
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    async def logout(self, request: Request) -> Response:
        """POST only (a link on another site cannot sign anyone out); the session ends server-side."""
        if not same_origin(request):
            return Response("Sign out from this app's own page.", status_code=403)
        token = request.cookies.get(SESSION_COOKIE)
        sessions = self.sessions()
        user = await run_in_threadpool(sessions.user, token)
        await run_in_threadpool(sessions.revoke, token)
        if user:
            await run_in_threadpool(AuditLog(self.storage).record, user.name, "logout", user.name, "ok", client_address(request))
        response = RedirectResponse("/auth/login?signed_out=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def routes(self) -> list[Route]:
        return [
            Route("/auth/login", self.login_page, methods=["GET"]),
            Route("/auth/login", self.login, methods=["POST"]),
            Route("/auth/logout", self.logout, methods=["POST"]),
        ]


SECURITY_HEADERS = [
    (b"x-frame-options", b"SAMEORIGIN"),  # no framing by another site or port
    (b"content-security-policy", b"frame-ancestors 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
UPLOADS = "/_stcore/upload_file"


class RequireSession:
    """ASGI middleware in front of Streamlit: a page load without a live session goes to the login page
    first; Streamlit's upload endpoint takes files only from a signed-in browser (it would otherwise
    keep an anonymous visitor's uploads in memory); every response forbids framing by other origins.
    Pages gate themselves too (ui/auth.py): this is not the only check."""

    def __init__(self, app: ASGIApp, pages: Callable[[], frozenset[str]], sessions: Callable[[], Sessions]) -> None:
        self.app, self.pages, self.sessions = app, pages, sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        is_page = scope["method"] == "GET" and path.strip("/") in self.pages()
        if is_page or path.startswith(UPLOADS):
            request = Request(scope)
            if await run_in_threadpool(self.sessions().user, request.cookies.get(SESSION_COOKIE)) is None:
                response: Response
                if is_page:
                    target = path + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
                    response = RedirectResponse(f"/auth/login?next={quote(safe_next(target), safe='/')}", status_code=303)
                else:
                    response = Response("Sign in first.", status_code=401)
                await response(scope, receive, send)
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)
