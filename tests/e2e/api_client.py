"""A tiny HTTP client for the API tests: one user's token against a launched stack's API, and its event stream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from core.accounts import Accounts
from core.api_tokens import ApiTokens
from core.storage import Storage


@dataclass
class Api:
    base: str  # http://127.0.0.1:<api port>
    token: str
    user: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base}/api/v1{path}", headers=headers, timeout=120, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response.json()

    def upload(self, name: str, data: bytes) -> str:
        return str(self.ok("POST", "/datasets", 201, files={"file": (name, data, "text/csv")})["dataset_id"])

    def events(self, workflow_id: str, interval: float = 0.5) -> list[tuple[str, dict[str, Any]]]:
        """Every server-sent event of a workflow's stream, until the server ends it."""
        got: list[tuple[str, dict[str, Any]]] = []
        url = f"{self.base}/api/v1/temporal/stream/{workflow_id}"
        with requests.get(url, headers=self.headers, params={"interval": interval}, stream=True, timeout=300) as resp:
            assert resp.status_code == 200, resp.text
            assert resp.headers["content-type"].startswith("text/event-stream")
            name = ""
            for raw in resp.iter_lines():
                line = raw.decode()
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    got.append((name, json.loads(line[6:])))
        return got

    def wait(self, workflow_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 240) -> dict[str, Any]:
        """The workflow's status once `done` holds of it (polled: for tests that act while a run is under way)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.ok("GET", f"/temporal/status/{workflow_id}")
            if done(status) or time.monotonic() > deadline:
                assert done(status), f"not as expected within {timeout}s: {json.dumps(status)[:3000]}"
                return dict(status)
            time.sleep(0.5)


def api_user(home: Path, base: str, name: str, role: str = "user") -> Api:
    """A new account on the stack and a token of its own (the browser test creates one on the Account page)."""
    storage = Storage(home)
    if Accounts(storage).get(name) is None:
        Accounts(storage).add(name, f"{name}-password-123", role)
    _, secret = ApiTokens(storage).create(name, "tests")
    return Api(base, secret, name)


def eventually(fn: Callable[[], Any], timeout: float = 30.0, interval: float = 0.3) -> Any:
    """fn()'s first truthy value (Temporal's visibility store is eventually consistent)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
