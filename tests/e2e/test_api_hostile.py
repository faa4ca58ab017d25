"""The REST API against a less honest caller, over HTTP against the launched stack: a body is never read before
its token is checked nor beyond its limit, a refused field is named and never echoed (nor a 500 for a value JSON
cannot carry), columns and cursors a script makes up are refused, and a token ends with its password and its
revocation, open event streams included."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace
from urllib.parse import urlparse

import pytest
import requests

from chaos.data import wide_csv
from core.accounts import User
from core.api_tokens import ApiTokens
from core.config import load_settings
from core.storage import Storage
from orchestration.account_service import AccountService
from orchestration.listing_calls import WorkflowFilter, encode_cursor, workflow_query
from tests.e2e.api_client import Api, api_user
from tests.helpers import classification_csv


@pytest.fixture(scope="module")
def cy(stack) -> Api:
    return api_user(stack.home, stack.api_url, "cy")


@pytest.fixture(scope="module")
def data_id(cy: Api) -> str:
    return cy.upload("shop.csv", classification_csv(rows=200))


def raw_head(base: str, path: str, headers: dict[str, str] | list[tuple[str, str]], method: str = "POST") -> tuple[int, bytes]:
    """The status and body the server answers to a request's head alone: its body is announced, never sent."""
    where = urlparse(base)
    pairs = headers.items() if isinstance(headers, dict) else headers
    lines = [f"{method} {path} HTTP/1.1", f"Host: {where.netloc}", *(f"{k}: {v}" for k, v in pairs), "", ""]
    with socket.create_connection((where.hostname, where.port), timeout=20) as conn:
        conn.sendall("\r\n".join(lines).encode())
        answer = b""
        while not _whole(answer):
            chunk = conn.recv(65536)  # a server waiting for the announced body would time out here
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _whole(answer: bytes) -> bool:
    """Whether an HTTP answer has come in full: its head, and as many bytes of body as it says."""
    head, found, body = answer.partition(b"\r\n\r\n")
    sizes = [line.partition(b":")[2] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return bool(found) and len(body) >= (int(sizes[0]) if sizes else 10)


def test_no_body_is_read_before_the_token_nor_over_the_limit(stack, cy: Api):
    under_limit = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(100 * 1024 * 1024)}
    status, body = raw_head(stack.api_url, "/api/v1/datasets", under_limit)  # an upload's size, no token
    assert status == 401 and b"valid API token" in body
    over_limit = {**under_limit, "Content-Length": str(10**9), "Authorization": f"Bearer {cy.token}"}
    status, body = raw_head(stack.api_url, "/api/v1/datasets", over_limit)
    assert status == 413 and "at most 201 MB of an upload" in json.loads(body)["detail"]  # the gate's words, as JSON
    said = {"Content-Type": "application/json", "Content-Length": str(2 * 1024 * 1024), "Authorization": f"Bearer {cy.token}"}
    status, body = raw_head(stack.api_url, "/api/v1/me", said, "GET")  # a route that takes no body takes no large one
    assert status == 413 and "at most 1 MB of JSON" in json.loads(body)["detail"]
    # a JSON body over its 1 MB, sent in full with a valid token: refused as it streams in, not parsed
    body = b'{"target": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    too_big = cy.post("/temporal/train", data=body, headers={"Content-Type": "application/json"})  # its size said
    assert too_big.status_code == 413 and "at most 1 MB of JSON" in too_big.json()["detail"]
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))  # its size unsaid: stopped as it streams in
    too_big = cy.post("/temporal/train", data=chunks, headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413 and "over its limit: 1 MB of JSON" in too_big.json()["detail"]


def test_an_upload_in_any_case_waits_for_the_one_being_read(stack, cy: Api):
    """Starlette reads "Multipart/Form-Data" as a form (held in memory) like "multipart/form-data": one at a time."""
    where = urlparse(stack.api_url)
    form = "Multipart/Form-Data; boundary=b"
    head = f"POST /api/v1/datasets HTTP/1.1\r\nHost: {where.netloc}\r\nAuthorization: Bearer {cy.token}\r\n"
    head += f"Content-Type: {form}\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n"
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n' + b"a,b\n" * 1000
    with socket.create_connection((where.hostname, where.port), timeout=20) as held:  # its body still coming in
        held.sendall(head.encode() + part)
        time.sleep(0.5)
        second = cy.post("/datasets", headers={"Content-Type": form}, data=b"--b--\r\n")
    assert second.status_code == 429 and "being read" in second.json()["detail"], second.text
    # its client gone, the upload's place is given back (once the server has read the disconnect: not at once)
    deadline = time.monotonic() + 10
    while (after := cy.post("/datasets", files={"file": ("b.csv", classification_csv(rows=200), "text/csv")})).status_code == 429:
        assert time.monotonic() < deadline, "a client that went away mid-upload still holds its user's place"
        time.sleep(0.05)
    assert after.status_code == 201, after.text


@pytest.mark.parametrize(
    "field, raw",
    [("test_size", "NaN"), ("test_size", "Infinity"), ("seed", "1e400"), ("target", '"' + "x" * 3_000_000 + '"')],
)
def test_a_refused_field_is_named_and_not_echoed(cy: Api, data_id, field, raw):
    body = {"dataset_id": data_id, "target": "bought", "model": "logistic_regression"}
    text = json.dumps(body)[:-1] + f', "{field}": {raw}}}'
    answer = cy.post("/temporal/train", data=text, headers={"Content-Type": "application/json"})
    if field == "target":  # 3 MB of it: over the JSON limit before any parsing
        assert answer.status_code == 413
        return
    assert answer.status_code == 422, answer.text
    items = answer.json()["detail"]
    assert any(item["loc"][-1] == field for item in items) and all("input" not in item for item in items)
    assert len(answer.content) < 2000


def test_two_authorization_headers_are_refused(stack, cy: Api):
    other = api_user(stack.home, stack.api_url, "fay")
    for pair in ([cy.token, other.token], ["te_junk", cy.token]):
        headers = [("Authorization", f"Bearer {token}") for token in pair] + [("Connection", "close")]
        status, _ = raw_head(stack.api_url, "/api/v1/me", headers, method="GET")
        assert status == 401  # whose call would it be? each reader might pick another


def test_the_services_words_travel_whatever_the_caller_sent(cy: Api, data_id):
    body = {"dataset_id": data_id, "target": "bought", "model": "logistic_regression"}
    text = json.dumps(body)[:-1] + ', "params": {"\\udcff": 1}}'  # a lone surrogate as a parameter's name
    answer = cy.post("/temporal/train", data=text, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and "unknown parameter" in answer.json()["detail"][0]["msg"]
    many = cy.post("/temporal/train", json={**body, "params": {f"k{i}" * 20: 1 for i in range(5000)}})
    assert many.status_code == 422 and len(many.content) < 2000  # named, not all echoed


def test_a_lone_surrogate_is_an_answer_not_a_500(cy: Api, data_id):
    text = '{"dataset_id": "' + data_id + '", "target": "\\ud800\\u202e", "model": "logistic_regression"}'
    answer = cy.post("/temporal/train", data=text, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][-1] == "target"


def test_made_up_columns_and_cursors_are_refused(cy: Api, data_id):
    body = {"dataset_id": data_id, "target": "bought", "model": "logistic_regression", "include_columns": ["nope"]}
    refused = cy.post("/temporal/train", json=body)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "include_columns"]
    assert cy.post("/temporal/train", json={**body, "include_columns": ["x" * 1001]}).status_code == 422
    # a cursor made for her own query (its check passes) around a page token Temporal cannot read
    made_up = encode_cursor(workflow_query("cy", WorkflowFilter()), b"\x00" * 10)
    forged = cy.get("/temporal/workflows", params={"cursor": made_up})
    assert forged.status_code == 422 and forged.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_a_reset_password_or_a_disabled_account_ends_the_accounts_tokens(stack):
    accounts, admin = AccountService(replace(load_settings(), home=stack.home)), User("admin", ("admin",))
    dora = api_user(stack.home, stack.api_url, "dora")
    assert dora.get("/me").status_code == 200
    accounts.reset_password(admin, "dora")
    assert dora.get("/me").status_code == 401
    assert not ApiTokens(Storage(stack.home)).list("dora")
    dora = api_user(stack.home, stack.api_url, "dora")  # a new one; then the account is disabled and enabled again
    accounts.set_disabled(admin, "dora", True)
    accounts.set_disabled(admin, "dora", False)
    assert dora.get("/me").status_code == 401


def test_a_revoked_token_ends_its_open_stream(stack):
    eli = api_user(stack.home, stack.api_url, "eli")
    token_id = eli.ok("GET", "/me")["token_id"]
    data = eli.upload("wide.csv", wide_csv(rows=20_000))
    body = {"dataset_id": data, "target": "bought", "model": "random_forest_classifier", "params": {"n_estimators": 400}}
    run = eli.ok("POST", "/temporal/train", 202, json=body)["id"]  # runs long enough to be watched
    names: list[str] = []
    url = f"{stack.api_url}/api/v1/temporal/stream/{run}"
    with requests.get(url, headers=eli.headers, params={"interval": 0.5}, stream=True, timeout=120) as resp:
        for raw in resp.iter_lines():
            line = raw.decode()
            if line.startswith("event: "):
                names.append(line[7:])
                if len(names) == 1:  # the stream is open: revoke its token, as the Account page does
                    ApiTokens(Storage(stack.home)).revoke("eli", token_id)
    assert names[0] == "status" and names[-2:] == ["error", "end"] and len(names) <= 4
    again = api_user(stack.home, stack.api_url, "eli")  # a new token of hers stops the run
    again.ok("DELETE", f"/temporal/cancel/{run}", 202)


def test_a_user_has_at_most_eight_streams_open_and_a_closed_one_frees_its_place(stack):
    from api.backend import STREAMS_PER_USER

    fay = api_user(stack.home, stack.api_url, "fay")
    data = fay.upload("wide.csv", wide_csv(rows=20_000))
    body = {"dataset_id": data, "target": "bought", "model": "random_forest_classifier", "params": {"n_estimators": 400}}
    run = fay.ok("POST", "/temporal/train", 202, json=body)["id"]  # runs long enough to be watched
    url = f"{stack.api_url}/api/v1/temporal/stream/{run}"

    reading: list = []  # each open stream's line iterator: one dropped would close its connection

    def opened() -> requests.Response:
        resp = requests.get(url, headers=fay.headers, params={"interval": 0.5}, stream=True, timeout=60)
        if resp.status_code == 200:
            reading.append(lines := resp.iter_lines())
            assert next(lines).decode() == "event: status"  # streaming: the first event came
        return resp

    streams = [opened() for _ in range(STREAMS_PER_USER)]
    try:
        assert [s.status_code for s in streams] == [200] * STREAMS_PER_USER
        refused = opened()
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "5", refused.text
        assert f"You have {STREAMS_PER_USER} progress streams open" in refused.json()["detail"]
        assert fay.get(f"/temporal/status/{run}").status_code == 200  # polling is not a stream
        for s in streams[:2]:  # the client goes: its places free up at once, however the stream was left
            s.close()
        streams = streams[2:]
        deadline = time.monotonic() + 10
        while len(streams) < STREAMS_PER_USER and time.monotonic() < deadline:
            if (again := opened()).status_code == 200:
                streams.append(again)
            else:
                time.sleep(0.2)
        assert len(streams) == STREAMS_PER_USER
        assert opened().status_code == 429  # no place was counted twice
    finally:
        for s in streams:
            s.close()
        fay.ok("DELETE", f"/temporal/cancel/{run}", 202)
