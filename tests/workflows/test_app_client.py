"""The app's Temporal client (lazy, short retries) against a real dev server that dies and comes back:
calls fail within seconds instead of the SDK's 10 s of retries, and the same client works again after."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import replace

from chaos.stack import free_port
from core.config import load_settings
from orchestration.client import APP_RETRIES, connect
from orchestration.health import unreachable
from tests.helpers import BIN


def dev_server(port: int) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "temporal"), "server", "start-dev", "--headless", "--port", str(port)]
    argv += ["--ui-port", str(free_port()), "--log-level", "error"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def answers(client) -> bool:
    try:
        await client.count_workflows("")
        return True
    except Exception as exc:
        if not unreachable(exc):
            raise
        return False


async def until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the dev server did not answer"
        await asyncio.sleep(0.5)


async def test_the_app_client_fails_fast_while_the_server_is_down_and_reconnects_by_itself(tmp_path):
    port = free_port()
    settings = replace(load_settings(), home=tmp_path, temporal_port=port, temporal_address="")
    client = await connect(settings, lazy=True, retries=APP_RETRIES)  # what the app does: no server yet
    assert not await answers(client)
    server = dev_server(port)
    try:
        await until(lambda: answers(client))
        server.kill()
        server.wait()
        started = time.monotonic()
        assert not await answers(client)
        assert time.monotonic() - started < 5  # the SDK's default retries wait ~10 s
        server = dev_server(port)
        await until(lambda: answers(client))  # the same client, no reconnect by hand
    finally:
        server.kill()
        server.wait()
