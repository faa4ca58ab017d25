"""The codec endpoint for the Temporal UI/CLI, served by uvicorn on a free port and called over HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from temporalio.api.common.v1 import Payloads
from temporalio.converter import DataConverter

from orchestration.codec import EncryptionCodec, KeyRing
from orchestration.codec_server import codec_routes

UI = "http://localhost:8233"
RING = KeyRing.generate()


def _authorize(request):
    """Stands in for the app's admin check: the test says who it is with a cookie."""
    return {"admin": True, "alice": False}.get(request.cookies.get("who"))


@pytest.fixture(scope="module")
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = Starlette(routes=codec_routes(lambda: EncryptionCodec(RING, allow_plaintext=True), _authorize, [UI]))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield f"http://127.0.0.1:{port}/codec"
    srv.should_exit = True
    thread.join(10)


def call(url, body=None, who=None, origin=UI, method="POST", content_type="application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    if who:
        headers["Cookie"] = f"who={who}"
    if origin:
        headers["Origin"] = origin
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _plain(value) -> dict:
    payloads = DataConverter.default.payload_converter.to_payloads([value])
    return json.loads(json_format.MessageToJson(Payloads(payloads=payloads)))


def test_admin_encodes_and_decodes_with_cors_for_the_ui(server):
    status, headers, body = call(f"{server}/encode", _plain({"column": "zebra_income_col"}), who="admin")
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == UI and headers["Access-Control-Allow-Credentials"] == "true"
    encoded = json.loads(body)
    assert b"zebra_income_col" not in body
    raw = json_format.Parse(body, Payloads())
    assert raw.payloads[0].metadata["encoding"] == b"binary/encrypted"

    status, _, body = call(f"{server}/decode", encoded, who="admin")
    assert status == 200
    decoded = json_format.Parse(body, Payloads())
    assert DataConverter.default.payload_converter.from_payloads(decoded.payloads) == [{"column": "zebra_income_col"}]


def test_the_cli_without_an_origin_header_is_served(server):
    status, headers, _ = call(f"{server}/encode", _plain(1), who="admin", origin=None)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize("who, expected", [(None, 401), ("alice", 403), ("mallory", 401)])
def test_non_admins_are_refused(server, who, expected):
    encoded = json.loads(call(f"{server}/encode", _plain("secret-plans.csv"), who="admin")[2])
    for op, body in (("decode", encoded), ("encode", _plain("x"))):
        status, headers, text = call(f"{server}/{op}", body, who=who)
        assert status == expected, op
        assert b"secret-plans" not in text
        assert headers["Access-Control-Allow-Origin"] == UI  # so the UI can tell the user why


def test_preflight_answers_the_ui_origin_only(server):
    status, headers, _ = call(f"{server}/decode", method="OPTIONS", content_type=None)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == UI and headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "x-namespace" in headers["Access-Control-Allow-Headers"]
    status, headers, _ = call(f"{server}/decode", method="OPTIONS", content_type=None, origin="http://evil.example")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    # a request from another site is refused even with an admin's cookie
    status, headers, _ = call(f"{server}/encode", _plain(1), who="admin", origin="http://evil.example")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers


def test_bad_requests_are_refused_plainly(server):
    assert call(f"{server}/decode", b"not json", who="admin")[0] == 400
    assert call(f"{server}/decode", _plain(1), who="admin", content_type="text/plain")[0] == 415
    # a payload sealed with a key this server does not have, or altered, is a 400 with the reason
    foreign = EncryptionCodec(KeyRing.generate())
    sealed = asyncio.run(foreign.encode(DataConverter.default.payload_converter.to_payloads([1])))
    body = json.loads(json_format.MessageToJson(Payloads(payloads=sealed)))
    status, _, text = call(f"{server}/decode", body, who="admin")
    assert status == 400 and b"unknown key id" in text

    # an oversized body is refused from its Content-Length, before it is read
    host, port = server.split("/")[2].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/codec/decode")
    for name, value in (("Content-Type", "application/json"), ("Cookie", "who=admin"), ("Content-Length", str(17 * 1024 * 1024))):
        conn.putheader(name, value)
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()


@pytest.mark.parametrize("who", [None, "alice", "admin"])
def test_encoding_nothing_is_answered_for_the_cli_query(server, who):
    """`temporal workflow query` encodes its empty arguments first: nothing to seal, nothing minted."""
    status, _, body = call(f"{server}/encode", {}, who=who, origin=None)
    assert (status, json.loads(body)) == (200, {})
    assert call(f"{server}/encode", _plain("x"), who=who, origin=None)[0] == (
        200 if who == "admin" else 401 if who is None else 403
    )
