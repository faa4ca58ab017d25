"""orchestration.run_reader: a progress query no worker answered (the only worker hung) is not asked again on
every read for a while, so the run page does not wait the query's timeout on each poll and page load."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import TypedSearchAttributes
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from orchestration import run_reader
from orchestration.progress import RunSeen

RUN = "train-alice-" + "a" * 32


class _Handle:
    """A running run whose worker is hung: the progress query times out; its history is already read."""

    id = RUN

    def __init__(self) -> None:
        self.queries = 0

    async def query(self, *_: Any, **__: Any) -> None:
        self.queries += 1
        raise RPCError("query timed out", RPCStatusCode.DEADLINE_EXCEEDED, b"")


def _desc() -> Any:
    return SimpleNamespace(
        status=WorkflowExecutionStatus.RUNNING,
        raw_description=SimpleNamespace(pending_activities=[]),
        typed_search_attributes=TypedSearchAttributes.empty,
        start_time=None,
        close_time=None,
    )


def test_an_unanswered_progress_query_is_not_asked_again_until_the_backoff_has_passed(monkeypatch):
    handle, seen, clock = _Handle(), RunSeen(request_read=True), [100.0]
    monkeypatch.setattr(run_reader.time, "monotonic", lambda: clock[0])

    def read() -> Any:
        return asyncio.run(run_reader.read_run(DataConverter.default, handle, _desc(), seen))  # type: ignore[arg-type]

    assert read().status == "running" and handle.queries == 1
    clock[0] += 2.0  # the page's next poll, and a page load: answered without waiting on the query
    read()
    read()
    assert handle.queries == 1
    clock[0] += run_reader.QUERY_BACKOFF
    read()
    assert handle.queries == 2  # asked again: a worker that is back is seen within the backoff
