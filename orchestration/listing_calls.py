"""The service's filtered, paged list of a user's runs and batches (the API's `workflows`): one visibility
query built from validated filters, paged with Temporal's own page token wrapped in an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.accounts import User
from core.names import DATASET_ID_RE
from ml.catalog import MODELS
from orchestration.errors import InvalidInput
from orchestration.views import RunSummary, build_run_summary

# our status words -> Temporal's ExecutionStatus values
STATUS_QUERY = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
}
KINDS = ("train", "batch")
MAX_PAGE = 200
DIGEST = 8  # bytes of the query's hash a cursor carries: a cursor is refused for other filters


@dataclass(frozen=True)
class WorkflowFilter:
    """What the list is narrowed to; None: any. Each value is checked before it enters the query."""

    status: str | None = None
    kind: str | None = None
    model: str | None = None
    dataset_id: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


@dataclass
class WorkflowPage:
    items: list[RunSummary]
    next_cursor: str | None  # None: this was the last page


def _rfc3339(moment: datetime, field: str) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # a time without a zone is UTC
    try:
        return aware.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    except OverflowError:  # year 1 at +05:00 is before the first representable moment in UTC
        raise InvalidInput(f"{field} is out of range.", field) from None


def workflow_query(owner: str, f: WorkflowFilter) -> str:
    """The visibility query of `owner`'s workflows under `f`. Every value is one of a known set or matches a
    strict pattern (the owner passed USERNAME_RE), so none can break out of its quotes."""
    clauses = [f"Owner = '{owner}'"]
    if f.kind is None:
        clauses.append("RunKind IN ('train', 'batch')")
    elif f.kind in KINDS:
        clauses.append(f"RunKind = '{f.kind}'")
    else:
        raise InvalidInput(f"kind must be one of: {', '.join(KINDS)}.", "kind")
    if f.status is not None:
        if f.status not in STATUS_QUERY:
            raise InvalidInput(f"status must be one of: {', '.join(STATUS_QUERY)}.", "status")
        clauses.append(f"ExecutionStatus = '{STATUS_QUERY[f.status]}'")
    if f.model is not None:
        if f.model not in MODELS:
            raise InvalidInput(f"unknown model {f.model!r}; choose one of {', '.join(MODELS)}", "model")
        clauses.append(f"Model = '{f.model}'")
    if f.dataset_id is not None:
        if not DATASET_ID_RE.fullmatch(f.dataset_id):
            raise InvalidInput("dataset must be a dataset id (16 hexadecimal characters).", "dataset")
        clauses.append(f"DatasetId = '{f.dataset_id}'")
    if f.started_after is not None:
        clauses.append(f"StartTime >= '{_rfc3339(f.started_after, 'started_after')}'")
    if f.started_before is not None:
        clauses.append(f"StartTime <= '{_rfc3339(f.started_before, 'started_before')}'")
    return " AND ".join(clauses)


def encode_cursor(query: str, token: bytes) -> str:
    digest = hashlib.sha256(query.encode()).digest()[:DIGEST]
    return base64.urlsafe_b64encode(digest + token).decode().rstrip("=")


def bad_cursor() -> InvalidInput:
    return InvalidInput("The cursor is not one this list gave out for these filters; start again without it.", "cursor")


def decode_cursor(query: str, cursor: str) -> bytes:
    """Temporal's page token inside a cursor given out for the same query; InvalidInput otherwise."""
    wrong = bad_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise wrong from None
    if len(raw) <= DIGEST or raw[:DIGEST] != hashlib.sha256(query.encode()).digest()[:DIGEST]:
        raise wrong
    return raw[DIGEST:]


class ListingCalls:
    """Mixed into TrainEasyService, whose client lists the workflows."""

    client: Client

    async def list_workflows(
        self, user: User, filters: WorkflowFilter, page_size: int = 50, cursor: str | None = None
    ) -> WorkflowPage:
        """One page of the user's runs and batches, in Temporal's order (running first, then the most recently
        closed); `next_cursor` fetches the next page with the same filters."""
        if not 1 <= page_size <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}.", "limit")
        query = workflow_query(user.name, filters)
        token = decode_cursor(query, cursor) if cursor else None
        listing = self.client.list_workflows(query, page_size=page_size, next_page_token=token)
        try:
            await listing.fetch_next_page()
        except RPCError as err:
            if token is not None and err.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN):
                raise bad_cursor() from None  # a stale or forged page token (the server cannot read it)
            if err.status != RPCStatusCode.INVALID_ARGUMENT:
                raise
            # the filters passed their checks, so only a time the server cannot store is left (year 97)
            raise InvalidInput("The time range is outside what Temporal stores.", "started_after") from None
        now = datetime.now(UTC)
        items = [
            build_run_summary(wf.id, wf.status, wf.typed_search_attributes, wf.start_time, wf.close_time, now)
            for wf in listing.current_page or []
        ]
        following = listing.next_page_token
        return WorkflowPage(items, encode_cursor(query, following) if following else None)
