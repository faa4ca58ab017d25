"""The API's app factory: the backend in the lifespan, the routers, the error mapping and the audit of every
call. `python -m api` serves it (api/__main__.py); tests may call create_app() with their own settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from api import errors, routes_data, routes_runs, routes_stream
from api.audit import AuditCalls
from api.backend import Backend
from api.gate import TokenGate, body_limit
from core.config import Settings, load_settings

VERSION = "1.0.0"
DESCRIPTION = """Everything the TrainEasy app does for a user, for scripts: upload a dataset, train a model or a
batch, watch it, fetch the model and predict with it. The same rules as the app: your own objects only
(another user's is "not found"), the same validation, quotas and audit log.

**Auth**: create a token on your **Account** page in the app, then send `Authorization: Bearer <token>`.
**Errors**: 401 no valid token · 404 not found (or not yours) · 409 not in a state that allows it ·
422 a field out of bounds (`loc` names it) · 429 a quota or rate limit (`Retry-After`) ·
503 Temporal or the workers cannot be reached (`Retry-After`). Versioned under `/api/v1`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    backend = Backend(settings or load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await backend.start()
        try:
            yield
        finally:
            await backend.stop()

    app = FastAPIOffline(  # FastAPI whose /docs page loads Swagger UI from this server, not from a CDN
        title="TrainEasy API",
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "runs and batches", "description": "Temporal workflows: start, watch, list, cancel, retry"},
            {"name": "datasets"},
            {"name": "models"},
            {"name": "account"},
            {"name": "health"},
        ],
    )
    app.state.backend = backend
    errors.install(app)
    # an upload and its form (JSON routes take far less: api/gate.py); inside the gate, whose JSON 413 for a body
    # that says it is too big it would replace with its own plain text (as FastAPI's app-wide limit does)
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=body_limit(backend))
    app.add_middleware(TokenGate, backend=backend)  # inside the audit: its 401s and 413s are recorded too
    app.add_middleware(AuditCalls)
    for router in (routes_runs.router, routes_stream.router, routes_data.router):
        app.include_router(router)
    return app
