"""Every API call is audited (core/audit.py, action `api.call`): who (the token's user, "-" without one), from
where, `METHOD /path`, and how it went (ok below 400, refused 4xx, error 5xx) with the status and the token id.
What a call does is audited by the service too (launch, cancel, retry, upload, ...), as for the pages.
Calls without a valid token are recorded at most once per 30 s per address (whatever path it makes up): a flood
of bad tokens must not grow the log without bound. The open documents (health, docs, the spec) are not recorded."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

from api.auth import backend, client_address
from ui.signin import OncePer

log = logging.getLogger("traineasy.api")
OPEN_PATHS = ("/api/v1/temporal/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")
STATIC_PREFIX = "/static-offline-docs/"  # the docs page's own Swagger UI files (fastapi-offline)


def outcome(status: int) -> str:
    return "ok" if status < 400 else "refused" if status < 500 else "error"


class AuditCalls(BaseHTTPMiddleware):
    def __init__(self, app: object) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.anonymous_noted = OncePer(30.0)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            response = await call_next(request)
        except Exception:  # the app's 500 is sent outside this middleware: record it here, then let it go on
            await self._record(request, 500)
            raise
        await self._record(request, response.status_code)
        return response

    async def _record(self, request: Request, status: int) -> None:
        path = request.url.path
        if path in OPEN_PATHS or path.startswith(STATIC_PREFIX):
            return
        caller = getattr(request.state, "api_caller", None)  # api/gate.py's: also for a call refused before its route
        actor = getattr(request.state, "user", None) or (caller[0].name if caller else None)
        address = client_address(request)
        what = f"{request.method} {path}"[:200]
        if actor is None and not self.anonymous_noted(address):  # one per address, whatever path it makes up
            return
        token = getattr(request.state, "token_id", None) or (caller[1] if caller else None)
        detail = f"HTTP {status}" + (f", token {token}" if token else "")
        try:
            audit = backend(request).audit
            await run_in_threadpool(audit.record, actor or "-", "api.call", what, outcome(status), address, detail)
        except Exception:  # the audit must not turn a done call into an error the client retries
            log.exception("could not record %s", what)
