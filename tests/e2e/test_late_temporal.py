"""`make run` with TEMPORAL_ADDRESS naming a server that is down: the launcher does not give up. It says so in one
line, starts the app (which serves with its outage banner; Home tells a user in their words), and starts the
workers once the server answers; Ctrl-C stays clean."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Stack, free_port, login
from tests.helpers import BIN, stop_processes

NOT_REACHABLE = "is not reachable; the app is up and shows it; workers start when it answers"


def dev_server(port: int) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen([*argv, "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def workers_running(stack: Stack, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [n for n, c in stack.children().items() if n.startswith("worker") and c["state"] == "running"]
        if running:
            return running
        assert stack.running, stack.text()
        time.sleep(0.5)
    return []


def test_the_app_serves_while_temporal_is_down_and_workers_start_once_it_answers(tmp_path, new_page: Callable[[], Page]):
    port = free_port()
    address = f"127.0.0.1:{port}"
    stack = Stack(tmp_path / "home", extra_env={"TEMPORAL_ADDRESS": address})
    server = None
    try:
        stack.wait_ready(120)
        assert f"Temporal at {address} {NOT_REACHABLE}" in stack.text()
        assert stack.app_healthy() and not [n for n in stack.children() if n.startswith("worker")]

        page = new_page()
        login(page, stack, "alice")  # a user: the banner, and Home in her words without launcher details
        expect(page.locator(".st-key-engine_banner")).to_have_count(1, timeout=15_000)
        expect(page.get_by_text("Training is unavailable right now")).to_be_visible(timeout=15_000)
        assert "logs/" not in page.content()

        assert stack.running and not workers_running(stack, 0.1)
        server = dev_server(port)
        assert workers_running(stack, 120), stack.text()[-3000:]
        assert f"Temporal at {address} answers now: starting the workers" in stack.text()
    finally:
        rc = stack.stop()
        if server is not None:
            stop_processes(server)
    assert rc == 0, stack.text()[-3000:]
    assert "Traceback" not in (tmp_path / "home" / "logs" / "streamlit.log").read_text()
