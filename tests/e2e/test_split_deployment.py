"""The topology docker-compose.yml deploys, run for real without Docker: a Temporal server of its own (the compose
file's `temporal`), its namespace made by deploy/temporal/create-namespace.sh (`temporal-namespace`), the launcher
with TEMPORAL_ADDRESS and no worker of its own (`app`: TRAINEASY_WORKERS=0), and a separate `python -m workers`
process sharing only the data folder (`worker`). A run launched through the app's service is trained by that
worker, and the app's health check counts it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from core.accounts import User
from core.config import PROJECT_ROOT, load_settings
from orchestration.client import connect
from orchestration.contracts import TrainRequest
from orchestration.service import TrainEasyService
from tests.e2e.conftest import Stack, free_port
from tests.e2e.test_late_temporal import dev_server
from tests.helpers import BIN, classification_csv, finished_run, start_worker_process, stop_processes, wait_for_workers

NAMESPACE = "teamspace"
SCRIPT = PROJECT_ROOT / "deploy" / "temporal" / "create-namespace.sh"


def create_namespace(address: str) -> str:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": NAMESPACE}
    out = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


async def train(settings, user: User) -> tuple[str, str]:
    client = await connect(settings)
    await wait_for_workers(client, settings, 1, timeout=120)  # the worker container starts beside the app's
    service = TrainEasyService(client, settings)
    ds = await service.upload_dataset(user, "shop.csv", classification_csv())
    run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression"))
    view = await finished_run(service, user, run_id, timeout=180)
    assert view.status == "completed", view.error
    return run_id, view.facts.worker


def test_the_app_without_workers_and_a_separate_worker_share_only_the_data_folder(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    server = dev_server(port)
    home = tmp_path / "home"
    stack = worker = None
    try:
        assert f"namespace {NAMESPACE} created" in create_namespace(address)
        assert f"namespace {NAMESPACE} exists" in create_namespace(address)  # a second `docker compose up`

        stack = Stack(home, extra_env={"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": NAMESPACE, "TRAINEASY_WORKERS": "0"})
        stack.wait_ready()
        text = stack.text()
        assert "no worker process here (TRAINEASY_WORKERS=0)" in text and "Workers:      none here" in text
        assert not [name for name in stack.children() if name.startswith("worker")]

        settings = replace(load_settings(), home=home, temporal_address=address, namespace=NAMESPACE)
        worker = start_worker_process(settings, address, TEMPORAL_NAMESPACE=NAMESPACE)
        # in a thread of its own: in the whole suite Playwright's sync API keeps an event loop on this one
        with ThreadPoolExecutor(1) as pool:
            run_id, trained_by = pool.submit(asyncio.run, train(settings, User("alice"))).result()
        assert trained_by.startswith(f"{worker.pid}@"), (trained_by, worker.pid)

        env = {**os.environ, "TRAINEASY_HOME": str(home), "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": NAMESPACE}
        env["TRAINEASY_TASK_QUEUE"] = settings.task_queue
        health = subprocess.run(
            [sys.executable, "-m", "orchestration.health_check"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        report = json.loads(health.stdout)
        assert health.returncode == 0, report  # ok: Temporal answers, and the separate worker is alive
        # its two queues (training, data tasks), both served by the one separate worker
        assert {(w["worker"], w["queue"]) for w in report["workers"]} == {(trained_by, "training"), (trained_by, "data tasks")}
    finally:
        rc = stack.stop() if stack is not None else 0
        stop_processes(worker, server)
    assert rc == 0, stack.text()[-3000:] if stack is not None else ""
    assert "Traceback" not in (home / "logs" / "streamlit.log").read_text()
