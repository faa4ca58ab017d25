"""`python -m orchestration.health_check` against a real Temporal server and a real worker process: its JSON
and its exit code (0 ok, 1 degraded, 2 down), and nothing in it names the storage folder."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys

from core.config import PROJECT_ROOT
from core.db import open_db
from core.storage import Storage, write_atomic
from tests.helpers import start_worker_process, stop_processes, wait_for_workers


def run_check(settings, address: str) -> tuple[int, dict]:
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "TRAINEASY_HOME": str(settings.home)}
    env["TRAINEASY_TASK_QUEUE"] = settings.task_queue
    argv = [sys.executable, "-m", "orchestration.health_check"]
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert str(settings.home) not in done.stdout, "the JSON names the storage folder"
    return done.returncode, json.loads(done.stdout)


async def check(settings, address: str) -> tuple[int, dict]:
    return await asyncio.to_thread(run_check, settings, address)


def states(report: dict) -> dict[str, str]:
    return {c["name"]: c["state"] for c in report["checks"]}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_check_says_ok_degraded_or_down_in_json_and_in_its_exit_code(client, settings):
    address = client.service_client.config.target_host
    with open_db(Storage(settings.home).app_db) as db:  # the app database, as the app creates it
        db.execute("CREATE TABLE IF NOT EXISTS t (x)")
    proc = start_worker_process(settings, address)
    try:
        await wait_for_workers(client, settings, 1)
        rc, report = await check(settings, address)
        assert (rc, report["state"]) == (0, "ok"), report
        assert report["temporal"]["reachable"] and report["temporal"]["latency_ms"] >= 0
        assert report["live_workers"] == 1
        assert {(w["worker"], w["queue"], w["slots"]) for w in report["workers"]} == {
            (f"{proc.pid}@{os.uname().nodename}", "training", 1),
            (f"{proc.pid}@{os.uname().nodename}", "data tasks", 2),
        }
        assert report["free_bytes"] > 0 and states(report)["database"] == "ok"

        # a child the launcher gave up: degraded, exit code 1 (this test process stands in for the launcher)
        state = {"launcher_pid": os.getpid(), "children": {"worker-2": {"state": "given-up", "restarts": 4, "since": None}}}
        write_atomic(Storage(settings.home).supervisor_state, json.dumps(state).encode())
        rc, report = await check(settings, address)
        assert (rc, report["state"], states(report)["supervisor"]) == (1, "degraded", "degraded"), report
        assert report["children"] == [{"name": "worker-2", "state": "given-up", "restarts": 4, "since": None}]
        Storage(settings.home).supervisor_state.unlink()
    finally:
        stop_processes(proc)

    # the worker stopped: down, exit code 2, at once (its file went with it)
    rc, report = await check(settings, address)
    assert (rc, report["state"], states(report)["workers"], report["live_workers"]) == (2, "down", "down", 0), report

    # no Temporal server there: down, and it says so
    rc, report = await check(settings, f"127.0.0.1:{closed_port()}")
    assert (rc, states(report)["temporal"]) == (2, "down") and not report["temporal"]["reachable"]


def test_help_and_quiet_are_understood(settings):
    argv = [sys.executable, "-m", "orchestration.health_check"]
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{closed_port()}", "TRAINEASY_HOME": str(settings.home)}
    shown = subprocess.run([*argv, "--help"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--quiet" in shown.stdout and "Exit code: 0 ok, 1 degraded, 2 down" in shown.stdout
    quiet = subprocess.run([*argv, "--quiet"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (quiet.returncode, quiet.stdout) == (2, ""), quiet.stderr
    wrong = subprocess.run([*argv, "--bogus"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 64 and "unrecognized arguments: --bogus" in wrong.stderr and wrong.stdout == ""  # not "down"


async def test_a_namespace_the_server_does_not_have_is_down_as_refused_not_unreachable(client, settings):
    """One classification: the server answers but refuses (NOT_FOUND namespace); the app's probe says so, never raises."""
    from dataclasses import replace

    from orchestration.client import connect
    from orchestration.health import check_health, probe_temporal

    address = client.service_client.config.target_host
    wrong = replace(settings, temporal_address=address, namespace="no-such-namespace")
    other = await connect(wrong, lazy=True)
    probe = await probe_temporal(other)
    assert probe.reachable and not probe.usable and "'no-such-namespace' does not exist" in (probe.refused or "")
    report = await check_health(wrong, other)
    temporal = next(c for c in report.checks if c.name == "temporal")
    assert temporal.state == "down" and temporal.reason.startswith("Temporal answers but refuses: the namespace")
