"""Worker liveness on a real Temporal server with real worker processes: a kill -9 is seen within seconds by
the live count, the batch's default parallelism and health, and an upload with no live worker is refused
at once (the server's own poller list would have counted the dead worker for 90 s)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid

import pytest
from temporalio import activity

from core.accounts import User
from core.storage import Storage
from orchestration.contracts import StageResult, TrainInput, TrainRequest, io_queue
from orchestration.errors import UserError
from orchestration.health import check_health
from orchestration.liveness import live_workers
from orchestration.training_activities import TrainingActivities
from tests.helpers import (
    classification_csv,
    eventually,
    finished_run,
    running_workers,
    start_worker_process,
    stop_processes,
    wait_for_workers,
)

SEEN_WITHIN = 3.0  # seconds from a kill -9 until the worker no longer counts
RELEASE = threading.Event()


@pytest.fixture
def user():
    return User(f"live_{uuid.uuid4().hex[:6]}")


def alive_pids(settings) -> set[int]:
    return {w.pid for w in live_workers(Storage(settings.home))}


async def test_a_killed_worker_drops_out_of_the_count_parallelism_and_health_within_seconds(client, settings, service):
    address = client.service_client.config.target_host
    procs = [start_worker_process(settings, address) for _ in range(2)]
    try:
        await wait_for_workers(client, settings, 2)
        assert alive_pids(settings) == {p.pid for p in procs}
        assert service.default_parallelism() == 2
        before = await check_health(settings, client)
        assert before.live_workers == 2 and {r.queue for r in before.workers} == {"training", "data tasks"}

        victim, survivor = procs
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.monotonic()

        async def only_survivor() -> bool:
            return alive_pids(settings) == {survivor.pid}

        await eventually(only_survivor, timeout=SEEN_WITHIN, interval=0.05)
        took = time.monotonic() - killed
        assert service.default_parallelism() == 1
        after = await check_health(settings, client)
        assert after.live_workers == 1 and {r.worker.split("@")[0] for r in after.workers} == {str(survivor.pid)}
        print(f"kill -9 seen by the live count after {took:.2f}s")
        assert not any(p.name.startswith(f"{victim.pid}@") for p in Storage(settings.home).workers_state.iterdir())
    finally:
        stop_processes(*procs)
    # a clean stop removes the worker's own file
    assert list(Storage(settings.home).workers_state.iterdir()) == []


async def test_an_upload_right_after_the_only_worker_is_killed_is_refused_at_once(client, settings, service, user):
    address = client.service_client.config.target_host
    proc = start_worker_process(settings, address)
    try:
        await wait_for_workers(client, settings, 1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        started = time.monotonic()
        with pytest.raises(UserError, match="No worker process is running, so this cannot be done right now"):
            await asyncio.wait_for(service.upload_dataset(user, "shop.csv", classification_csv()), 30)
        took = time.monotonic() - started
    finally:
        stop_processes(proc)
    assert took < 2, f"refused after {took:.1f}s"
    assert not any(service.storage.upload_dir(user.name).glob("*")), "the staged upload is removed"


async def test_the_beat_file_counts_the_busy_training_slot(client, settings, service, user):
    RELEASE.clear()
    storage = Storage(settings.home)
    real = TrainingActivities(storage, settings)

    @activity.defn(name="fit_model")
    def held_fit(inp: TrainInput) -> StageResult:
        """The real fit, once the test releases it."""
        while not RELEASE.wait(0.2):
            activity.heartbeat()
        return real.fit_model(inp)

    def training_busy() -> int:
        [worker] = live_workers(storage)
        return next(q.busy for q in worker.queues if q.queue == settings.task_queue)

    async def busy_is(n: int) -> bool:
        return training_busy() == n

    async with running_workers(client, settings, {"fit_model": held_fit}):
        [worker] = live_workers(storage)
        expected = {(settings.task_queue, 1, 0), (io_queue(settings.task_queue), 2, 0)}
        assert {(q.queue, q.slots, q.busy) for q in worker.queues} == expected
        ds = await service.upload_dataset(user, "shop.csv", classification_csv())
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression"))
        try:
            await eventually(lambda: busy_is(1), timeout=30, interval=0.2)
            report = await check_health(settings, client)
            assert "0 of 1 training slots free" in next(c.reason for c in report.checks if c.name == "workers")
        finally:
            RELEASE.set()
        view = await finished_run(service, user, run_id)
        assert view.status == "completed", view.error
        await eventually(lambda: busy_is(0), timeout=10, interval=0.2)
    assert live_workers(storage) == []  # the block's end removed the file
