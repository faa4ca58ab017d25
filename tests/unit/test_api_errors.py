"""api.errors: the one mapping from the service's typed errors to HTTP status, body and Retry-After."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request
from temporalio.service import RPCError, RPCStatusCode

from api.backend import Unavailable
from api.errors import RETRY_OUTAGE_S, RETRY_QUOTA_S, error_response
from core.quota_limits import Refusal
from orchestration.errors import Conflict, Forbidden, InvalidInput, NotFound, NotReady, QuotaExceeded, UserError


def request(method: str = "POST") -> Request:
    return Request({"type": "http", "method": method, "path": "/api/v1/x", "headers": [], "query_string": b""})


def answer(exc: Exception, method: str = "POST") -> tuple[int, object, str | None]:
    response = error_response(request(method), exc)
    return response.status_code, json.loads(bytes(response.body)), response.headers.get("retry-after")


@pytest.mark.parametrize(
    ("exc", "status"),
    [(NotFound("No such run."), 404), (Forbidden("admins only"), 403), (Conflict("This run has already finished."), 409)],
)
def test_plain_refusals_keep_the_services_words(exc, status):
    assert answer(exc) == (status, {"detail": str(exc)}, None)


def test_a_field_out_of_bounds_is_422_naming_it_where_it_was_sent():
    body = {"detail": [{"loc": ["body", "test_size"], "msg": "The test split …", "type": "value_error"}]}
    assert answer(InvalidInput("The test split …", "test_size")) == (422, body, None)
    status, got, _ = answer(InvalidInput("kind must be …", "kind"), "GET")
    assert status == 422 and got["detail"][0]["loc"] == ["query", "kind"]  # type: ignore[index]
    status, got, _ = answer(UserError("binary file, not a CSV"))
    assert status == 422 and got == {"detail": [{"loc": ["body"], "msg": "binary file, not a CSV", "type": "value_error"}]}
    status, got, _ = answer(InvalidInput("Configuration 2: 'alpha' must be …", "items.2.params"))  # a batch's item
    assert status == 422 and got["detail"][0]["loc"] == ["body", "items", 2, "params"]  # type: ignore[index]


def test_a_rate_limit_is_429_with_its_own_retry_after_and_a_slot_limit_with_a_default():
    rate = QuotaExceeded(Refusal("launches_per_minute", 10, 1, 10, retry_after_s=17))
    assert answer(rate) == (429, {"detail": rate.refusal.message}, "17")
    slots = QuotaExceeded(Refusal("max_runs_in_flight", 3, 1, 3))
    assert answer(slots)[0::2] == (429, str(RETRY_QUOTA_S))


def test_an_outage_or_no_worker_is_503_with_retry_after_and_no_rpc_words():
    status, body, retry = answer(Unavailable("Temporal is not reachable (since 10:00:00 UTC)"))
    assert (status, retry) == (503, str(RETRY_OUTAGE_S))
    assert body == {"detail": "Temporal is not reachable (since 10:00:00 UTC). Nothing was done; try again once it is back."}
    status, body, retry = answer(RPCError("tcp connect error: Connection refused (os error 111)", RPCStatusCode.UNAVAILABLE, b""))
    assert status == 503 and "os error" not in json.dumps(body) and retry == str(RETRY_OUTAGE_S)
    assert answer(NotReady("No worker process is running …"))[0::2] == (503, str(RETRY_OUTAGE_S))


def test_anything_else_is_a_500_that_says_nothing_of_the_failure():
    status, body, _ = answer(KeyError("/srv/secret/path"))
    assert status == 500 and "secret" not in json.dumps(body)
