"""A run's stages stay on the worker that ran its first one (its own task queue), reuse what that worker holds in
memory, and move to another worker within seconds when it is gone: real dev server, real worker processes (and
the real worker code in this process where the test must look inside it)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pandas as pd
import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker

import ml.persist
from core.accounts import User
from core.datasets import dataset_path
from orchestration.contracts import WORKER_BUSY, StageResult, TrainInput, TrainRequest, io_queue
from orchestration.stage_cache import RUNS
from orchestration.training_activities import TrainingActivities
from orchestration.workflows.training import STICKY_START
from tests.helpers import (
    classification_csv,
    eventually,
    finished_run,
    running_workers,
    start_worker_process,
    stop_processes,
    wait_for_workers,
)
from tests.sticky_history import placements
from workers.beat_file import slot_uses
from workers.training_slot import TrainingSlot

FIT = ("random_forest_classifier", {"n_estimators": 20})


@pytest.fixture
def user():
    return User(f"stick_{uuid.uuid4().hex[:6]}")


def own_queue_of(settings, queue: str) -> bool:
    return queue.startswith(f"{settings.task_queue}-worker-")


async def test_each_runs_stages_stay_on_the_worker_that_ran_its_first(client, settings, service, user):
    address = client.service_client.config.target_host
    procs = [start_worker_process(settings, address) for _ in range(2)]
    try:
        await wait_for_workers(client, settings, 2)
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=400))
        runs = [
            await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", *FIT, seed=i, cv_folds=2))
            for i in range(3)  # more runs than workers: the third waits for a worker, then stays on it
        ]
        views = [await finished_run(service, user, run_id, timeout=180) for run_id in runs]
        placed = {run_id: await placements(client, run_id) for run_id in runs}
    finally:
        stop_processes(*procs)
    assert [v.status for v in views] == ["completed"] * 3, [v.error for v in views]
    for view in views:
        stages = placed[view.run_id]
        assert [p.stage for p in stages] == ["load", "preprocess", "cv", "fit", "evaluate", "save"]
        assert {p.identity for p in stages} == {view.facts.worker}, stages  # one worker, the one the fit names
        assert stages[0].queue == settings.task_queue
        assert all(own_queue_of(settings, p.queue) for p in stages[1:]) and len({p.queue for p in stages[1:]}) == 1
    assert {v.facts.worker for v in views} == {f"{p.pid}@{os.uname().nodename}" for p in procs}  # both worked


async def test_a_run_whose_worker_is_killed_mid_fit_finishes_on_the_other_within_seconds(client, settings, service, user):
    address = client.service_client.config.target_host
    procs = [start_worker_process(settings, address, TRAINEASY_CHECKPOINT_SECONDS="0") for _ in range(2)]
    try:
        await wait_for_workers(client, settings, 2)
        ds = await service.upload_dataset(user, "big.csv", classification_csv(rows=30000))
        run_id = await service.start_training(
            user, TrainRequest(user.name, ds.dataset_id, "bought", "random_forest_classifier", {"n_estimators": 300}, seed=3)
        )
        checkpoint = service.storage.run_dir(user.name, run_id) / "checkpoint.json"

        async def checkpointed():
            return checkpoint.is_file()

        await eventually(checkpointed, timeout=180, interval=0.2)
        desc = await client.get_workflow_handle(run_id).describe()
        [fitting] = desc.raw_description.pending_activities
        victim = next(p for p in procs if fitting.last_worker_identity == f"{p.pid}@{os.uname().nodename}")
        survivor = next(p for p in procs if p is not victim)
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.monotonic()
        view = await finished_run(service, user, run_id, timeout=240)
        took = time.monotonic() - killed
        stages = await placements(client, run_id)
    finally:
        stop_processes(*procs)
    print(f"finished {took:.1f}s after the kill")
    assert view.status == "completed", view.error
    lost_at = next(i for i, p in enumerate(stages) if p.stage == "fit")
    # the fit's attempts on the killed worker's queue: the one it ran (lost) and a retry nobody took; then the
    # shared queue, where the survivor resumed from the checkpoint and kept the run's last stages
    assert stages[lost_at].queue == stages[lost_at - 1].queue and stages[lost_at].outcome == "timed_out"
    survivor_id = f"{survivor.pid}@{os.uname().nodename}"
    moved = stages[lost_at + 1]
    assert (moved.stage, moved.queue, moved.identity) == ("fit", settings.task_queue, survivor_id)
    assert {p.identity for p in stages[lost_at + 1 :]} == {survivor_id}
    assert view.facts.worker == survivor_id and view.facts.resumed_from_step > 0
    assert next(s for s in view.stages if s.name == "fit").attempt == 2
    # the heartbeat timeout (20 s) and the wait for the gone worker (STICKY_START), plus the rest of the fit
    assert took < 20 + STICKY_START.total_seconds() + 60, f"{took:.0f}s"


async def test_a_stage_whose_worker_stopped_between_stages_goes_to_another_within_the_short_wait(client, settings, service, user):
    """The worker that ran the fit stops polling its own queue as the fit ends: the evaluate sent there is taken
    by no one, and after STICKY_START it runs on the shared queue (here: the same process's shared-queue worker,
    which still polls; the SDK allows one worker per queue per process)."""
    real_fit = TrainingActivities(service.storage, settings).fit_model
    own_workers: list[Worker] = []
    loop = asyncio.get_running_loop()

    @activity.defn(name="fit_model")
    def stop_own_queue_after_fit(inp: TrainInput) -> StageResult:
        result = real_fit(inp)
        asyncio.run_coroutine_threadsafe(own_workers[0].shutdown(), loop)  # from now on nobody polls that queue
        return result

    async with running_workers(client, settings, {"fit_model": stop_own_queue_after_fit}) as first:
        own_workers.append(first[2])
        ds = await service.upload_dataset(user, "shop.csv", classification_csv())
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", *FIT))

        async def evaluating():
            return (await service.get_run(user, run_id)).stage == "evaluate"

        await eventually(evaluating, timeout=60, interval=0.1)
        asked = time.monotonic()
        view = await finished_run(service, user, run_id, timeout=60)
        took = time.monotonic() - asked
        stages = await placements(client, run_id)
    assert view.status == "completed", view.error
    evaluate = [p for p in stages if p.stage == "evaluate"]
    assert [(own_queue_of(settings, p.queue), p.outcome) for p in evaluate] == [(True, "timed_out"), (False, "completed")]
    assert evaluate[0].identity is None  # never started: the stage moved without costing an attempt
    assert next(s for s in view.stages if s.name == "evaluate").attempt == 1
    assert took < STICKY_START.total_seconds() + 15, f"{took:.0f}s"


async def test_a_stage_its_busy_worker_refuses_runs_on_the_shared_queue_at_once(client, settings, service, user, monkeypatch):
    refused: list[bool] = []
    real = TrainingSlot.overbooked

    def busy_once(slot: TrainingSlot) -> bool:
        if not refused:
            refused.append(True)
            return True  # as if another run's fit had come from the shared queue meanwhile
        return real(slot)

    monkeypatch.setattr(TrainingSlot, "overbooked", busy_once)
    async with running_workers(client, settings) as workers:
        # three workers, two slot counts for the beat file: the own queue's work counts on the training slot
        assert len(workers) == 3 and [u.queue for u in slot_uses(workers)] == [settings.task_queue, io_queue(settings.task_queue)]
        ds = await service.upload_dataset(user, "shop.csv", classification_csv())
        started = time.monotonic()
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", *FIT))
        view = await finished_run(service, user, run_id, timeout=60)
        took = time.monotonic() - started
        stages = await placements(client, run_id)
    assert view.status == "completed", view.error
    preprocess = [p for p in stages if p.stage == "preprocess"]
    assert [(own_queue_of(settings, p.queue), p.outcome) for p in preprocess] == [(True, "failed"), (False, "completed")]
    assert next(s for s in view.stages if s.name == "preprocess").attempt == 1
    # the later stages follow the worker that ran the moved one (this process's, so back on its own queue)
    assert all(own_queue_of(settings, p.queue) for p in stages if p.stage in ("fit", "evaluate", "save"))
    assert took < STICKY_START.total_seconds(), f"{took:.1f}s: the refusal is immediate, no wait for a timeout"
    history = await client.get_workflow_handle(run_id).fetch_history()
    assert WORKER_BUSY in history.to_json()


async def test_a_run_reads_its_dataset_once_and_its_model_never_and_leaves_nothing_in_memory(
    client, settings, service, user, monkeypatch
):
    reads: list[str] = []
    loads: list[str] = []
    read_parquet, load_model = pd.read_parquet, ml.persist.load_model

    def counted_read(path, *args, **kwargs):
        reads.append(str(path))
        return read_parquet(path, *args, **kwargs)

    def counted_load(path):
        loads.append(str(path))
        return load_model(path)

    monkeypatch.setattr(pd, "read_parquet", counted_read)
    monkeypatch.setattr(ml.persist, "load_model", counted_load)
    async with running_workers(client, settings):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv())
        parquet = str(dataset_path(service.storage, user.name, ds.dataset_id))
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", *FIT, cv_folds=2))
        view = await finished_run(service, user, run_id)
        odd = await service.upload_dataset(user, "odd.csv", classification_csv() + b"40,50.0,nice,maybe\n")
        odd_parquet = str(dataset_path(service.storage, user.name, odd.dataset_id))
        failed_id = await service.start_training(user, TrainRequest(user.name, odd.dataset_id, "bought", "logistic_regression"))
        failed = await finished_run(service, user, failed_id)
    assert view.status == "completed", view.error
    assert failed.status == "failed"  # refused at load: a class of a single row
    assert reads.count(parquet) == 1 and reads.count(odd_parquet) == 1  # each run's load stage, once
    assert not [p for p in loads if run_id in p]  # evaluate took the fitted model from memory
    assert run_id not in RUNS.runs() and failed_id not in RUNS.runs()
    description = await client.get_workflow_handle(run_id).describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
