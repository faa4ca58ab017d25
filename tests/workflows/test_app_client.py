"""The app's Temporal client (lazy, short retries) against a real dev server that dies and comes back:
calls fail within seconds instead of the SDK's 10 s of retries, and the same client works again after; and
against one that hangs (SIGSTOP): a facade call under way gives up as soon as the engine watch sees it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from dataclasses import replace

import pytest

from chaos.stack import free_port
from core.accounts import User
from core.config import load_settings
from orchestration.client import APP_RETRIES, connect
from orchestration.engine_watch import EngineWatch
from orchestration.errors import NotFound
from orchestration.health import probe_temporal, unreachable
from orchestration.service import TrainEasyService
from tests.helpers import BIN
from ui.sync_service import DEFAULT_TIMEOUT, SyncService, Unavailable


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


def test_a_call_to_a_hung_server_gives_up_once_the_watch_sees_it(tmp_path):
    """A stopped (not dead) server answers nothing and refuses nothing: without the watch the call would wait the
    facade's whole timeout (20 s); with it, it is Unavailable within moments of the watch flipping."""
    port = free_port()
    settings = replace(load_settings(), home=tmp_path, temporal_port=port, temporal_address="")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = dev_server(port)
    try:
        client = asyncio.run_coroutine_threadsafe(connect(settings, lazy=True, retries=APP_RETRIES), loop).result(10)
        asyncio.run_coroutine_threadsafe(until(lambda: answers(client)), loop).result(90)
        watch = EngineWatch(lambda: probe_temporal(client))
        watch.start(loop)
        svc = SyncService(loop, TrainEasyService(client, settings), watch)
        assert watch.wait_first(10).up
        alice, run_id = User("alice"), "train-alice-" + "0" * 32
        with pytest.raises(NotFound):  # the server answers: there is no such run
            svc.get_run(alice, run_id)
        os.kill(server.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(Unavailable, match="Temporal is not reachable"):
            while True:  # calls made before the watch has seen the hang wait for it, then give up
                with pytest.raises(NotFound):
                    svc.get_run(alice, run_id)
        gave_up = time.monotonic()
        state = watch.snapshot()
        assert state.down and state.down_since is not None
        print(f"the call gave up {gave_up - started:.1f} s after the SIGSTOP")
        assert gave_up - started < 8.0 < DEFAULT_TIMEOUT  # the watch probes every 2 s with a 2 s timeout
        watch.stop()
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.kill()
        server.wait()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
