"""Stack.supervise on tiny real processes (sh, sleep): give-up, a restart that never serves, waiting for
Temporal, and the stop order. No server; the launched stack is tests/e2e/test_supervision.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from child_process import GIVE_UP_FAILURES
from supervisor import Stack
from tests.helpers import test_settings

SLEEP = ["sleep", "60"]


def stack_in(tmp_path) -> Stack:
    return Stack(test_settings(tmp_path, restart_backoff=0.01))


async def started(stack: Stack) -> asyncio.Event:
    for child in stack.children:
        await child.start()
        stack._set(child, "running")
    return asyncio.Event()


def state(stack: Stack) -> dict:
    return json.loads(stack.storage.supervisor_state.read_text())["children"]


async def until(predicate, timeout: float = 20.0) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_a_crash_looping_child_is_given_up_and_the_others_keep_running(tmp_path, capsys):
    stack = stack_in(tmp_path)
    crashing = stack._child("crasher", ["sh", "-c", "exit 3"])
    steady = stack._child("steady", SLEEP)
    stop = await started(stack)
    steady_pid = steady.pid
    watching = asyncio.create_task(stack.supervise(stop))

    await until(lambda: crashing.state == "given-up")
    assert state(stack)["crasher"] == state(stack)["crasher"] | {"state": "given-up", "pid": None, "last_exit": 3}
    assert state(stack)["crasher"]["failures"] == GIVE_UP_FAILURES and crashing.restarts == GIVE_UP_FAILURES - 1
    assert steady.pid == steady_pid and state(stack)["steady"]["state"] == "running"
    stop.set()
    assert await watching == 0
    await stack.stop()
    assert state(stack)["steady"]["state"] == "stopped" and state(stack)["crasher"]["state"] == "given-up"
    assert oct(stack.storage.supervisor_state.stat().st_mode & 0o777) == "0o600"
    out = capsys.readouterr().out
    assert out.count("crasher failed (exit code 3)") == GIVE_UP_FAILURES - 1
    assert f"crasher given up: it failed {GIVE_UP_FAILURES} times within 10 minutes (last: exit code 3)" in out


@pytest.mark.slow
async def test_a_restart_that_never_serves_is_a_failure_even_though_the_launcher_stopped_it(tmp_path, capsys):
    stack = stack_in(tmp_path)

    async def never(_child) -> bool:
        return False

    child = stack._child("mute", SLEEP, serving=never, serving_timeout=0.5)
    stop = await started(stack)
    watching = asyncio.create_task(stack.supervise(stop))
    assert child.pid is not None
    os.kill(child.pid, signal.SIGTERM)  # a clean stop: restarted, and then each restart never serves

    await until(lambda: child.state == "given-up")
    out = capsys.readouterr().out
    assert out.count("mute failed (not serving 0.5s after its restart)") == GIVE_UP_FAILURES - 1
    assert "mute given up" in out and "(last: not serving 0.5s after its restart)" in out
    stop.set()
    await watching
    await stack.stop()


async def test_a_worker_waits_for_the_temporal_server_before_it_is_started_again(tmp_path, capsys):
    stack = stack_in(tmp_path)
    temporal = stack.temporal = stack._child("temporal", SLEEP)
    worker = stack._child("worker-1", SLEEP, needs_temporal=True)
    stop = await started(stack)
    watching = asyncio.create_task(stack.supervise(stop))
    stack._set(temporal, "restarting")  # as while the launcher's server is coming back
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)

    await until(lambda: "worker-1 waits for the Temporal server" in capsys.readouterr().out)
    await asyncio.sleep(0.3)
    assert not worker.alive and worker.state == "restarting"
    stack._set(temporal, "running")
    await until(lambda: worker.state == "running" and worker.alive)
    stop.set()
    await watching
    await stack.stop()


async def test_ctrl_c_stops_the_children_in_reverse_order(tmp_path):
    stack = stack_in(tmp_path)
    record = tmp_path / "stopped.txt"
    for name in ("temporal", "worker-1", "worker-2", "streamlit"):
        # each child notes its name when asked to stop (sh runs the trap once the short sleep ends)
        script = f"trap 'echo {name} >> {record}; exit 0' TERM; while true; do sleep 0.05; done"
        stack._child(name, ["sh", "-c", script])
    stop = await started(stack)
    watching = asyncio.create_task(stack.supervise(stop))
    await asyncio.sleep(0.2)
    stop.set()
    await watching
    await stack.stop()
    assert record.read_text().split() == ["streamlit", "worker-2", "worker-1", "temporal"]
    assert all(c["state"] == "stopped" and c["restarts"] == 0 for c in state(stack).values())


async def test_no_worker_is_started_when_they_run_elsewhere(tmp_path, capsys, monkeypatch):
    """TRAINEASY_WORKERS=0 (docker-compose.yml's app container): the launcher starts none and says why."""
    from dataclasses import replace

    from core.config import load_settings
    from launcher import banner

    monkeypatch.setenv("TRAINEASY_WORKERS", "0")
    assert load_settings().workers == 0
    monkeypatch.setenv("TRAINEASY_WORKERS", "-1")
    with pytest.raises(SystemExit, match="TRAINEASY_WORKERS=-1 must be at least 0"):
        load_settings()
    monkeypatch.delenv("TRAINEASY_WORKERS")
    stack = Stack(replace(test_settings(tmp_path), workers=0))
    await stack.start_workers(["false"])  # a command that would fail at once, were it started
    assert stack.children == []
    assert "no worker process here (TRAINEASY_WORKERS=0)" in capsys.readouterr().out
    assert "Workers:      none here (TRAINEASY_WORKERS=0)" in banner(stack.settings, None, stack.storage)
    assert "Workers:" not in banner(replace(stack.settings, workers=1), None, stack.storage)
