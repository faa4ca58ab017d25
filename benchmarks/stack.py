"""The real path the figures go through: a Temporal dev server (the `temporal` binary in .venv/bin), one
`python -m workers` process per core, and the service layer (TrainEasyService) the pages call, in a temp home."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.accounts import User
from core.config import Settings, load_settings
from core.storage import Storage
from orchestration.client import data_converter
from orchestration.contracts import SEARCH_ATTRIBUTES, RunProgress, TrainRequest
from orchestration.dev_server import dev_server_args
from orchestration.service import TrainEasyService
from orchestration.workflows.training import TrainingWorkflow
from tests.helpers import start_worker_process, stop_processes, wait_for_workers

OWNER = "bench"
RUN_TIMEOUT = 3600.0


@dataclass
class BenchStack:
    settings: Settings
    env: WorkflowEnvironment
    workers: int
    procs: list[subprocess.Popen] = field(default_factory=list)
    user: User = field(default_factory=lambda: User(OWNER))

    @property
    def client(self) -> Client:
        return self.env.client

    @cached_property
    def service(self) -> TrainEasyService:
        """One service for the whole run, as the pages (ui/runtime.py) and the API (api/backend.py) keep one."""
        return TrainEasyService(self.client, self.settings)

    @property
    def storage(self) -> Storage:
        return Storage(self.settings.home)

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    async def start_workers(self) -> None:
        """Fresh worker processes (the old ones stopped): a figure that reads their peak memory starts them anew."""
        stop_processes(*self.procs)
        address = self.client.service_client.config.target_host
        self.procs = [start_worker_process(self.settings, address) for _ in range(self.workers)]
        await wait_for_workers(self.client, self.settings, self.workers, timeout=120)

    async def stop(self) -> None:
        stop_processes(*self.procs)
        self.procs = []
        await self.env.shutdown()

    async def upload(self, name: str, data: bytes) -> str:
        return (await self.service.upload_dataset(self.user, name, data)).dataset_id

    async def train(self, dataset_id: str, target: str, model: str, params: dict[str, Any]) -> RunProgress:
        """Launch a run as the Train page does and wait for its result: its record, with each stage's seconds."""
        run_id = await self.service.start_training(self.user, TrainRequest(OWNER, dataset_id, target, model, params))
        handle = self.client.get_workflow_handle_for(TrainingWorkflow.run, run_id)
        return await handle.result(rpc_timeout=timedelta(seconds=RUN_TIMEOUT))

    async def history_bytes(self, workflow_id: str) -> int:
        """The size of the run's history as a client fetches it (its events, serialised)."""
        history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        return sum(event.ByteSize() for event in history.events)


@contextmanager
def banner_hidden() -> Iterator[None]:
    """The dev server prints its banner (version, addresses) on the stdout it inherits, in the middle of the
    figures: started with this process's stdout on /dev/null (stderr, where its errors go, stays)."""
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


async def start_stack(home: Path, workers: int) -> BenchStack:
    settings = replace(
        load_settings(),
        home=home,
        task_queue=f"bench-{uuid.uuid4().hex[:6]}",
        launches_per_minute=100_000,  # the figures launch back to back; quotas are not what they measure
        max_runs_in_flight=1000,
        tasks_per_minute=100_000,
        max_stored_mb=100_000,
    )
    started = time.monotonic()
    with banner_hidden():
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
            search_attributes=list(SEARCH_ATTRIBUTES),
            dev_server_startup_timeout=timedelta(seconds=60),
            dev_server_extra_args=dev_server_args(database_file=False),  # as make run's server (orchestration/dev_server.py)
            dev_server_log_level="error",  # its start-up warnings are not the benchmark's
            data_converter=data_converter(settings),  # encrypted, as the workers (same home: same key file)
        )
    stack = BenchStack(settings, env, workers)
    try:
        await stack.start_workers()
    except BaseException:
        await stack.stop()
        raise
    print(f"  stack ready in {time.monotonic() - started:.1f} s: dev server + {workers} worker processes", flush=True)
    return stack


def stage_seconds(runs: list[RunProgress]) -> str:
    """The median seconds of each stage over these runs, as "load 1.2, fit 30.1, …" (where the time goes)."""
    import statistics

    names = [stage.name for stage in runs[0].stages]
    per = {n: [s.seconds for r in runs for s in r.stages if s.name == n and s.seconds is not None] for n in names}
    return ", ".join(f"{n} {statistics.median(v):.1f}" for n, v in per.items() if v)
