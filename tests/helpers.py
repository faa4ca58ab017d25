"""Shared test helpers: small CSVs made in the test, polling, and running workers in-process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from chaos.data import small_csv
from core.config import Settings, load_settings

BIN = Path(sys.executable).parent


classification_csv = small_csv  # the data set the chaos suite uses too: 3 features, "bought" yes/no


def regression_csv(rows: int = 200, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=rows), "x2": rng.normal(size=rows), "kind": rng.choice(["a", "b"], rows)})
    df["y"] = 3 * df.x1 - 2 * df.x2 + (df.kind == "a") + rng.normal(0, 0.1, rows)
    return df.to_csv(index=False).encode()


def test_settings(home: Path, **overrides) -> Settings:
    return replace(load_settings(), home=home, task_queue=f"tq-{uuid.uuid4().hex[:8]}", **overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a factory, not a test


@asynccontextmanager
async def running_workers(client, settings: Settings, activities_override: dict | None = None):
    """The real workers of workers/worker.py, in this process, optionally with some activities replaced,
    with their beat file as a worker process keeps it (the app's "no worker" refusal reads it)."""
    from core.storage import Storage
    from orchestration.liveness import default_identity
    from workers.beat_file import beat_file
    from workers.worker import build_workers

    identity = f"{uuid.uuid4().hex[:6]}-{default_identity()}"  # several sets in one test process
    workers = build_workers(client, settings, identity=identity, replace_activities=activities_override)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        async with beat_file(Storage(settings.home), workers, identity):
            await wait_for_workers(client, settings, 1)
            yield workers
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)


async def wait_for_workers(client, settings: Settings, n: int, timeout: float = 60.0) -> None:
    """As the launcher does: ready once n live workers serve both queues (their beat files)."""
    from core.storage import Storage
    from orchestration.contracts import io_queue
    from orchestration.liveness import live_workers, serving

    async def polling():
        alive = live_workers(Storage(settings.home))
        return min(len(serving(alive, q)) for q in (settings.task_queue, io_queue(settings.task_queue))) >= n

    await eventually(polling, timeout=timeout, interval=0.1)


async def eventually(fn, timeout: float = 60.0, interval: float = 0.3):
    """Poll an async predicate-returning function until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def finished_run(service, user, run_id: str, timeout: float = 120.0):
    """The run's view once it is no longer running."""

    async def done():
        view = await service.get_run(user, run_id)
        return view if not view.running else None

    return await eventually(done, timeout=timeout)


def start_worker_process(settings: Settings, address: str, **env: str) -> subprocess.Popen:
    """A real `python -m workers` process for these settings (its own pid: a separate worker)."""
    from core.config import PROJECT_ROOT

    full_env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "TRAINEASY_HOME": str(settings.home),
        "TRAINEASY_TASK_QUEUE": settings.task_queue,
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "workers"], cwd=PROJECT_ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop_processes(*procs) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
