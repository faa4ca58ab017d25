"""`/api/v1/temporal`: start, watch, list, cancel and retry runs and batches, the caller's metrics and the
engine's health. Each route is one service call (or one per kind of workflow id); the rules are the service's."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import backend, bearer, current_user
from api.backend import Backend
from api.errors import COMMON
from api.gate import JSON_LIMIT
from api.schemas import BatchBody, HealthOut, RetryBody, Started, Status, TrainBody, WorkflowPageOut
from core.accounts import User
from core.names import DATASET_ID_RE, InvalidName, parse_run_id
from ml.catalog import MODELS
from orchestration.errors import Conflict, InvalidInput, NotFound
from orchestration.listing_calls import MAX_PAGE, STATUS_QUERY, WorkflowFilter
from orchestration.metrics_calls import WorkflowMetrics

PREFIX = "/api/v1/temporal"
HEALTH_EVERY = 2.0  # seconds a health report is reused: a flood of anonymous checks does not probe the disk each time
router = APIRouter(prefix=PREFIX, tags=["runs and batches"])
Caller = Annotated[User, Depends(current_user)]
WorkflowId = Annotated[str, Path(max_length=100, description="A run id (`train-…`) or a batch id (`batch-…`)")]


def workflow_kind(workflow_id: str) -> str:
    """ "train" or "batch" from the id's shape; anything else is not found (as the service says of it)."""
    try:
        kind, _ = parse_run_id(workflow_id)
    except InvalidName:
        raise NotFound("No such run or batch.") from None
    if kind not in ("train", "batch"):
        raise NotFound("No such run or batch.")
    return kind


def started(workflow_id: str, kind: str, **extra: Any) -> Started:
    return Started(
        id=workflow_id,
        kind=kind,  # type: ignore[arg-type]
        status_url=f"{PREFIX}/status/{workflow_id}",
        stream_url=f"{PREFIX}/stream/{workflow_id}",
        **extra,
    )


async def read_status(b: Backend, user: User, workflow_id: str) -> Status:
    """The run page's view of a run, or the batch page's of a batch (also what the stream sends). Which worker
    process ran it (`pid@host`) is for an administrator's token, as the health route's reasons are; copies are
    changed, never the service's views (it keeps them for while Temporal cannot be reached)."""
    if workflow_kind(workflow_id) == "train":
        view = await b.call(b.svc.get_run(user, workflow_id))
        if not user.is_admin and view.facts.worker:
            view = replace(view, facts=replace(view.facts, worker=None))
        return Status(kind="train", status=view.status, run=view)
    batch = await b.call(b.svc.get_batch(user, workflow_id))
    if not user.is_admin and batch.progress is not None:
        children = [replace(c, worker=None) for c in batch.progress.children]
        batch = replace(batch, progress=replace(batch.progress, children=children))
    return Status(kind="batch", status=batch.status, batch=batch)


@router.post(
    "/train", status_code=202, max_body_size=JSON_LIMIT, response_model=Started, responses=COMMON, summary="Start a training run"
)
async def train(body: TrainBody, request: Request, user: Caller) -> Started:
    b = backend(request)
    run_id = await b.call(b.svc.start_training(user, body.request(user.name)))
    return started(run_id, "train")


@router.post(
    "/batch-train",
    status_code=202,
    max_body_size=JSON_LIMIT,
    response_model=Started,
    responses=COMMON,
    summary="Start a batch or a sweep",
)
async def batch_train(body: BatchBody, request: Request, user: Caller) -> Started:
    b = backend(request)
    batch = body.request(user.name)
    batch_id = await b.call(b.svc.start_batch(user, batch))
    return started(batch_id, "batch", max_parallel=batch.max_parallel)  # the service lowers it to the free slots


@router.get("/status/{workflow_id}", response_model=Status, responses=COMMON, summary="Status and progress of a run or batch")
async def status(workflow_id: WorkflowId, request: Request, user: Caller) -> Status:
    return await read_status(backend(request), user, workflow_id)


@router.delete(
    "/cancel/{workflow_id}", status_code=202, response_model=Started, responses=COMMON, summary="Cancel a run or batch"
)
async def cancel(workflow_id: WorkflowId, request: Request, user: Caller) -> Started:
    """The cancel is asked for; the run reports "cancelled" once its running stage has stopped (watch its status)."""
    b = backend(request)
    kind = workflow_kind(workflow_id)
    await b.call(b.svc.cancel_run(user, workflow_id) if kind == "train" else b.svc.cancel_batch(user, workflow_id))
    return started(workflow_id, kind)


@router.post(
    "/retry/{workflow_id}",
    max_body_size=JSON_LIMIT,
    status_code=202,
    response_model=Started,
    responses=COMMON,
    summary="Retry a run or a batch's failures",
)
async def retry(
    workflow_id: WorkflowId, request: Request, user: Caller, body: Annotated[RetryBody | None, Body()] = None
) -> Started:
    """A failed or cancelled run starts again as a new run (with `params` edited), linked to it (`retry_of`); a
    batch waiting on failed configurations retries them (with `edits` by configuration index)."""
    b, body = backend(request), body or RetryBody()
    if workflow_kind(workflow_id) == "train":
        if body.edits is not None:
            raise InvalidInput("edits are for a batch's configurations; a run takes params.", "edits")
        new_id = await b.call(b.svc.retry_run(user, workflow_id, body.params))
        return started(new_id, "train", retry_of=workflow_id)
    if body.params is not None:
        raise InvalidInput("params are for a run; a batch takes edits by configuration index.", "params")
    try:
        edits = {int(k): v for k, v in (body.edits or {}).items()}
    except ValueError:
        raise InvalidInput("edits are keyed by configuration index (a whole number).", "edits") from None
    await b.call(b.svc.retry_failed(user, workflow_id, edits))
    return started(workflow_id, "batch")


@router.post(
    "/finish/{workflow_id}", status_code=202, response_model=Started, responses=COMMON, summary="End a batch waiting on failures"
)
async def finish(workflow_id: WorkflowId, request: Request, user: Caller) -> Started:
    """A batch whose failed configurations wait for a decision (`batch.progress.phase` is `awaiting`) ends with
    the runs that completed, instead of retrying the failed ones (`retry`)."""
    b = backend(request)
    if workflow_kind(workflow_id) != "batch":
        raise InvalidInput("Only a batch waits for a decision; a run ends by itself.", "workflow_id")
    view = await b.call(b.svc.get_batch(user, workflow_id))
    if view.status != "running" or view.progress is None or view.progress.phase != "awaiting":
        raise Conflict("This batch is not waiting for a decision: only one whose failed runs wait can be finished.")
    await b.call(b.svc.finish_batch(user, workflow_id))
    return started(workflow_id, "batch")


@router.post(
    "/stop/{workflow_id}", status_code=202, response_model=Started, responses=COMMON, summary="Stop a batch, keep its results"
)
async def stop(workflow_id: WorkflowId, request: Request, user: Caller) -> Started:
    """A running batch stops gracefully: its runs under way are cancelled, no more start, and it completes with
    the runs that finished (their models stay registered); a cancel ends it as cancelled instead."""
    b = backend(request)
    if workflow_kind(workflow_id) != "batch":
        raise InvalidInput("Only a batch can be stopped this way; cancel a run.", "workflow_id")
    await b.call(b.svc.stop_batch(user, workflow_id))
    return started(workflow_id, "batch")


@router.get("/workflows", response_model=WorkflowPageOut, responses=COMMON, summary="Your runs and batches, filtered and paged")
async def workflows(
    request: Request,
    user: Caller,
    status: Annotated[str | None, Query(json_schema_extra={"enum": list(STATUS_QUERY)})] = None,
    kind: Annotated[str | None, Query(json_schema_extra={"enum": ["train", "batch"]})] = None,
    model: Annotated[str | None, Query(json_schema_extra={"enum": list(MODELS)})] = None,
    dataset: Annotated[str | None, Query(pattern=DATASET_ID_RE.pattern, description="A dataset id")] = None,
    started_after: Annotated[datetime | None, Query(description="RFC 3339; without a zone: UTC")] = None,
    started_before: Annotated[datetime | None, Query(description="RFC 3339; without a zone: UTC")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096, description="`next_cursor` of the previous page")] = None,
) -> WorkflowPageOut:
    """Running ones first, then the most recently closed (Temporal's order). Batch children are runs too."""
    b = backend(request)
    filters = WorkflowFilter(status, kind, model, dataset, started_after, started_before)
    page = await b.call(b.svc.list_workflows(user, filters, limit, cursor))
    return WorkflowPageOut(items=page.items, next_cursor=page.next_cursor)


@router.get("/metrics", response_model=WorkflowMetrics, responses=COMMON, summary="Your workflow metrics")
async def metrics(
    request: Request, user: Caller, everyone: Annotated[bool, Query(description="Everyone's (administrators only)")] = False
) -> WorkflowMetrics:
    b = backend(request)
    return await b.call(b.svc.workflow_metrics(user, everyone))


HEALTH_DOC: dict[int | str, dict[str, Any]] = {503: {"model": HealthOut, "description": "Degraded or down (the body says why)"}}


@router.get("/health", response_model=HealthOut, responses=HEALTH_DOC, tags=["health"], summary="The engine's health (no token)")
async def health(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> JSONResponse:
    """ok, degraded or down, and each check's state; with an administrator's token, each one's reason too.
    200 only when ok. Checked at most every HEALTH_EVERY seconds, however often it is asked."""
    b = backend(request)
    found = await b.sync(b.tokens.user, credentials.credentials) if credentials else None
    report = HealthOut.of(await b.health(HEALTH_EVERY), reasons=found is not None and found[0].is_admin)
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.state == "ok" else 503)
