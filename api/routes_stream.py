"""`GET /api/v1/temporal/stream/{id}`: a run's or batch's progress as server-sent events, so that a script
need not poll `status`. Each event is the `status` body; the stream ends after the workflow closes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.auth import backend
from api.backend import StreamSlots, Unavailable
from api.errors import COMMON, plain_answer
from api.routes_runs import PREFIX, Caller, WorkflowId, read_status
from api.schemas import Status
from core.accounts import User
from orchestration.errors import UserError

MAX_STREAM_S = 3600.0  # a stream ends after an hour at the latest; a client reconnects for more
KEEPALIVE_S = 15.0  # a comment line at least this often, so that proxies keep an idle stream open
RETRY_STREAM_S = 5  # Retry-After for a stream past its user's limit (api.backend.StreamSlots)
router = APIRouter(prefix=PREFIX, tags=["runs and batches"])

EVENTS_DOC: dict[int | str, dict[str, Any]] = {
    **COMMON,
    200: {
        "description": "`text/event-stream`: `event: status` with the status body (as `GET status`) whenever it "
        "changes, `event: error` with `{detail}` while Temporal cannot be reached (the stream carries on), "
        "`event: awaiting` with the status body when a batch's failed runs wait for a decision (`retry` or "
        "`finish`; the stream then ends: reconnect after deciding), and a last `event: end` with `{status}` once "
        "the run or batch has closed, waits for a decision, its token was revoked, or after an hour (reconnect).",
        "content": {
            "text/event-stream": {
                "schema": {  # one event (Open API before 3.2 has `schema` describe each event of a stream)
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["status", "error", "awaiting", "end"]},
                        "data": {"type": "string", "description": "JSON: the status body, `{detail}` or `{status}`"},
                    },
                },
                "example": 'event: status\ndata: {"kind": "train", …}\n\n',
            }
        },
    },
}


def event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"


@router.get(
    "/stream/{workflow_id}", response_class=StreamingResponse, responses=EVENTS_DOC, summary="Progress as server-sent events"
)
async def stream(
    workflow_id: WorkflowId,
    request: Request,
    user: Caller,
    interval: Annotated[float, Query(ge=0.5, le=30, description="Seconds between reads of the run")] = 2.0,
) -> StreamingResponse:
    first = await read_status(backend(request), user, workflow_id)  # not found, 401, 503: an HTTP answer, not a stream
    slots: StreamSlots = backend(request).streams
    if not slots.take(user.name):
        return plain_answer(  # type: ignore[return-value]  # a JSON answer in place of the stream
            429,
            f"You have {slots.limit} progress streams open, the most one user may; close one (or poll `status`) and try again.",
            RETRY_STREAM_S,
        )
    return SlotStream(
        slots.give_back,
        user.name,
        _events(request, user, workflow_id, first, interval),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class SlotStream(StreamingResponse):
    """A stream that gives its user's slot back however it ends: closed, cancelled, the client gone, even before
    its first event (its generator's own `finally` would never run then)."""

    def __init__(self, give_back: Callable[[str], None], user: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._give_back: Callable[[str], None] | None = give_back
        self._user = user

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()

    def __del__(self) -> None:  # never called (the request cancelled between the route and its answer)
        self.release()

    def release(self) -> None:
        if self._give_back is not None:
            give_back, self._give_back = self._give_back, None
            give_back(self._user)


async def still_valid(request: Request) -> bool:
    """Whether the stream's token still lets its user in (checked at every read of the run)."""
    _, _, secret = request.headers.get("authorization", "").partition(" ")  # the one header api/gate.py let in
    b = backend(request)
    found = await b.sync(b.tokens.user, secret.strip())
    return found is not None and found[1] == request.state.token_id


def waits(view: Status) -> bool:
    """A batch whose failed runs wait for its owner's retry or finish."""
    return view.batch is not None and view.batch.progress is not None and view.batch.progress.phase == "awaiting"


async def _events(request: Request, user: User, workflow_id: str, first: Status, interval: float) -> AsyncIterator[str]:
    deadline, quiet_since = time.monotonic() + MAX_STREAM_S, time.monotonic()
    body, status, awaiting = first.model_dump_json(), first.status, waits(first)
    yield event("status", body)
    last = body
    while status == "running" and time.monotonic() < deadline:
        if awaiting:  # nothing changes until its owner decides: say so, and end
            yield event("awaiting", body)
            status = "awaiting"
            break
        await asyncio.sleep(interval)
        if await request.is_disconnected():
            return
        if not await still_valid(request):  # revoked (or its account disabled) while the stream was open
            yield event("error", json.dumps({"detail": "This token was revoked; the stream ends."}))
            status = "revoked"
            break
        try:
            view = await read_status(backend(request), user, workflow_id)
        except (Unavailable, UserError) as err:  # an outage: say so and keep watching
            yield event("error", json.dumps({"detail": str(err)}))
            continue
        status, body, awaiting = view.status, view.model_dump_json(), waits(view)
        if body != last or time.monotonic() - quiet_since >= KEEPALIVE_S:
            yield event("status", body)
            last, quiet_since = body, time.monotonic()
    yield event("end", json.dumps({"status": status}))
