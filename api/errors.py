"""The one mapping from the service's typed errors to HTTP answers, and the error bodies the OpenAPI spec
documents for every route. Messages are the service's own (safe to show); nothing else leaks."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from api.backend import Unavailable
from api.gate import JSON_LIMIT
from orchestration.errors import Conflict, Forbidden, InvalidInput, NotFound, NotReady, QuotaExceeded, UserError
from orchestration.health import UNREACHABLE, unreachable

log = logging.getLogger("traineasy.api")
RETRY_OUTAGE_S = 10  # Retry-After when Temporal or the workers are away
RETRY_QUOTA_S = 30  # Retry-After for a quota that frees up when a run ends (no figure of its own)


class ErrorOut(BaseModel):
    detail: str


class ValidationItem(BaseModel):
    """One refused field, as FastAPI itself reports one: where (`loc`), why (`msg`), what kind (`type`)."""

    model_config = ConfigDict(extra="allow")
    loc: list[str | int]
    msg: str
    type: str


class ValidationOut(BaseModel):
    detail: list[ValidationItem]


def _doc(model: type[BaseModel], text: str, retry_after: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"model": model, "description": text}
    if retry_after:
        entry["headers"] = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}}
    return entry


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: _doc(ErrorOut, "No token, or a token that is unknown, revoked or of a disabled account")
}
# what any authenticated route may answer besides its own success
COMMON: dict[int | str, dict[str, Any]] = {
    400: _doc(ErrorOut, "A body that cannot be read (not JSON, or not the multipart form the route takes)"),
    **UNAUTHORIZED,
    403: _doc(ErrorOut, "Not allowed for this account (an admin-only view)"),
    404: _doc(ErrorOut, "No such object, or another user's (the two look the same)"),
    409: _doc(ErrorOut, "The object's state does not allow it (cancel a finished run)"),
    413: _doc(ErrorOut, "A body over the limit: an upload's TRAINEASY_MAX_UPLOAD_MB, or 1 MB of JSON"),
    422: _doc(ValidationOut, "A field out of bounds or not fitting the data; `loc` names it"),
    429: _doc(ErrorOut, "A quota or rate limit: nothing was started", retry_after=True),
    503: _doc(ErrorOut, "Temporal or the workers cannot be reached: nothing was started", retry_after=True),
}


MAX_MESSAGE = 500  # characters of a message: the service's words may quote what the caller sent


def safe(text: str) -> str:
    """A message as it can travel: at most MAX_MESSAGE characters, anything UTF-8 cannot carry (a lone
    surrogate the caller sent) escaped rather than failing the answer."""
    text = text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def plain_answer(status: int, text: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"detail": safe(text)}, status_code=status, headers=headers)


PATH_FIELDS = ("workflow_id",)  # fields named in a route's path, not its query or body


def invalid(request: Request, msg: str, field: str | None) -> JSONResponse:
    where = "path" if field in PATH_FIELDS else "query" if request.method in ("GET", "DELETE") else "body"
    path = [int(p) if p.isdigit() else p for p in field.split(".")] if field else []  # "items.2.params"
    item = {"loc": [where, *path], "msg": safe(msg), "type": "value_error"}
    return JSONResponse({"detail": [item]}, status_code=422)


def error_response(request: Request, exc: Exception) -> JSONResponse:
    """The HTTP answer to an exception a route let through."""
    if isinstance(exc, NotFound):
        return plain_answer(404, str(exc))
    if isinstance(exc, Forbidden):
        return plain_answer(403, str(exc))
    if isinstance(exc, Conflict):
        return plain_answer(409, str(exc))
    if isinstance(exc, QuotaExceeded):
        return plain_answer(429, str(exc), exc.retry_after_s or RETRY_QUOTA_S)
    if isinstance(exc, NotReady):
        return plain_answer(503, str(exc), RETRY_OUTAGE_S)
    if isinstance(exc, InvalidInput):
        return invalid(request, str(exc), exc.field)
    if isinstance(exc, UserError):
        return invalid(request, str(exc), None)
    if isinstance(exc, Unavailable) or unreachable(exc):
        text = str(exc) if isinstance(exc, Unavailable) else UNREACHABLE
        return plain_answer(503, f"{text}. Nothing was done; try again once it is back.", RETRY_OUTAGE_S)
    log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return plain_answer(500, "Unexpected error; the details are in the API's log.")


def refused_fields(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 without the refused input echoed back: a 5 MB field is not sent back, and a value JSON
    cannot carry (1e400, NaN, a lone surrogate) does not turn the answer into a 500."""
    items = [
        {
            "loc": [safe(p) if isinstance(p, str) else p for p in e.get("loc", ())],  # a dict key the caller chose
            "msg": safe(str(e.get("msg", ""))),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    return JSONResponse({"detail": items[:50]}, status_code=422)


def install(app: FastAPI) -> None:
    """Route every exception through error_response; FastAPI's validation errors keep their shape, minus the input."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(request, exc)

    async def handle_fields(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return refused_fields(exc)

    async def handle_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 413:  # a body past a route's limit as it streamed in (one that said its size: gate.py)
            upload_mb = request.app.state.backend.settings.max_upload_bytes / 2**20
            return plain_answer(
                413, f"The request body is over its limit: {JSON_LIMIT // 2**20} MB of JSON, or an upload of {upload_mb:g} MB."
            )
        return await http_exception_handler(request, exc)

    app.add_exception_handler(RequestValidationError, handle_fields)
    app.add_exception_handler(HTTPException, handle_http)

    for kind in (UserError, Unavailable, Exception):
        app.add_exception_handler(kind, handle)
