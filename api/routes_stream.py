"""`GET /api/v1/temporal/stream/{id}`: a run's or batch's progress as server-sent events, so that a script
need not poll `status`. Each event is the `status` body; the stream ends after the workflow closes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import backend
from api.backend import Unavailable
from api.errors import COMMON
from api.routes_runs import PREFIX, Caller, WorkflowId, read_status
from core.accounts import User
from orchestration.errors import UserError

MAX_STREAM_S = 3600.0  # a stream ends after an hour at the latest; a client reconnects for more
KEEPALIVE_S = 15.0  # a comment line at least this often, so that proxies keep an idle stream open
router = APIRouter(prefix=PREFIX, tags=["runs and batches"])

EVENTS_DOC: dict[int | str, dict[str, Any]] = {
    **COMMON,
    200: {
        "description": "`text/event-stream`: `event: status` with the status body (as `GET status`) whenever it "
        "changes, `event: error` with `{detail}` while Temporal cannot be reached (the stream carries on), and a "
        "last `event: end` once the run or batch has closed (or after an hour: reconnect).",
        "content": {
            "text/event-stream": {
                "schema": {  # one event (Open API before 3.2 has `schema` describe each event of a stream)
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["status", "error", "end"]},
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
    return StreamingResponse(
        _events(request, user, workflow_id, first.model_dump_json(), first.status, interval),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, user: User, workflow_id: str, body: str, status: str, interval: float) -> AsyncIterator[str]:
    deadline, quiet_since = time.monotonic() + MAX_STREAM_S, time.monotonic()
    yield event("status", body)
    last = body
    while status == "running" and time.monotonic() < deadline:
        await asyncio.sleep(interval)
        if await request.is_disconnected():
            return
        try:
            view = await read_status(backend(request), user, workflow_id)
        except (Unavailable, UserError) as err:  # an outage: say so and keep watching
            yield event("error", json.dumps({"detail": str(err)}))
            continue
        status, body = view.status, view.model_dump_json()
        if body != last or time.monotonic() - quiet_since >= KEEPALIVE_S:
            yield event("status", body)
            last, quiet_since = body, time.monotonic()
    yield event("end", json.dumps({"status": status}))
