"""The REST API process alone, its Temporal address answering nothing: it starts and serves, refuses what needs
Temporal with 503 and Retry-After in plain words, and still answers what needs only files and the database."""

from __future__ import annotations

import os
import subprocess
import sys

import requests

from chaos.stack import free_port
from core.config import PROJECT_ROOT
from tests.e2e.api_client import api_user, eventually
from tests.helpers import classification_csv, stop_processes


def test_with_temporal_down_calls_that_need_it_are_503_in_plain_words(tmp_path):
    api_port, dead = free_port(), free_port()
    env = {
        **os.environ,
        "TRAINEASY_HOME": str(tmp_path),
        "TRAINEASY_API_PORT": str(api_port),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{dead}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "api"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        client = api_user(tmp_path, f"http://127.0.0.1:{api_port}", "dora")
        eventually(lambda: _answers(f"{client.base}/openapi.json"), timeout=60)
        for method, path in [("GET", "/temporal/workflows"), ("GET", "/temporal/status/train-dora-" + "0" * 32)]:
            response = client.request(method, path)
            assert response.status_code == 503 and response.headers["retry-after"] == "10", response.text
            assert response.json()["detail"].startswith("Temporal is not reachable") and "os error" not in response.text
        upload = client.post("/datasets", files={"file": ("a.csv", classification_csv(rows=50), "text/csv")})
        assert upload.status_code == 503, upload.text
        health = requests.get(f"{client.base}/api/v1/temporal/health", timeout=30)
        assert health.status_code == 503 and health.json()["state"] == "down"
        assert client.ok("GET", "/datasets") == [] and client.ok("GET", "/me")["user"] == "dora"
    finally:
        stop_processes(proc)
    assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False
