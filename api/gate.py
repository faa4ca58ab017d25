"""The API's front door, before any route reads a request's body: a call that needs a token and has no valid one is
401 at once (an anonymous caller cannot make the server read, hold or spool a body of any size), and a body that
says it is over its limit (1 MB, an upload's form more) is 413 before a byte of it is read. FastAPI's own limits
(`max_body_size`, per route in api/routes_*.py, and the app's in api/app.py) stop one that does not say its size,
as it streams in. Those answer a body that said its size themselves, in plain text: the gate must answer first.

The token's user is left in the request's state, where api/auth.py's dependency takes it without a second lookup.
A request with two Authorization headers is refused: each reader would pick another. A multipart body (a file)
is held in memory while it is read, so each user sends one at a time (429 for a second one meanwhile).
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.backend import Backend

JSON_LIMIT = 1024 * 1024  # a request body that is JSON (train, batch, retry): far above any real one
MULTIPART_SLACK = 1024 * 1024  # an upload's form around its file (boundaries, headers)
OPEN = ("/api/v1/temporal/health",)  # needs no token; the docs and the spec live outside /api/v1
UNAUTHORIZED = "A valid API token is needed: Authorization: Bearer <token>."


def body_limit(backend: Backend) -> int:
    """The largest body a route takes: an upload's file (TRAINEASY_MAX_UPLOAD_MB) and its form."""
    return backend.settings.max_upload_bytes + MULTIPART_SLACK


def is_multipart(content_type: str) -> bool:
    """Whether a body is a form with a file, as Starlette reads one: its media type in any case
    ("Multipart/Form-Data" is parsed as a form too, and must wait its turn like one)."""
    return content_type.strip().lower().startswith("multipart/")


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class TokenGate:
    def __init__(self, app: ASGIApp, backend: Backend) -> None:
        self.app, self.backend = app, backend
        self.uploading: set[str] = set()  # users whose multipart body (an upload, a prediction's file) is being read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/v1/") or path in OPEN:
            await self.app(scope, receive, send)
            return
        raw = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        headers = dict(raw)
        given = [v for k, v in raw if k == "authorization"]
        scheme, _, secret = given[0].partition(" ") if len(given) == 1 else ("", "", "")  # two: whose call is it?
        found = await run_in_threadpool(self.backend.tokens.user, secret.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            await _answer(send, 401, UNAUTHORIZED, [(b"www-authenticate", b"Bearer")])
            return
        length = headers.get("content-length", "")
        multipart = is_multipart(headers.get("content-type", ""))
        # only a multipart body (an upload, a prediction's file) may be large; any other is JSON of at most 1 MB
        limit = body_limit(self.backend) if multipart else JSON_LIMIT
        if length.isdigit() and int(length) > limit:
            what = "an upload" if multipart else "JSON"
            await _answer(
                send, 413, f"The request body is {int(length):,} bytes; at most {limit / 2**20:.0f} MB of {what} is taken."
            )
            return
        scope.setdefault("state", {})["api_caller"] = found
        if not multipart:
            await self.app(scope, receive, send)
            return
        user = found[0].name  # an upload's form is held in memory while it is read: one at a time per user
        if user in self.uploading:
            await _answer(
                send, 429, "An upload of yours is being read; send the next one when it is done.", [(b"retry-after", b"5")]
            )
            return
        self.uploading.add(user)
        try:
            await self.app(scope, receive, send)
        finally:
            self.uploading.discard(user)
