"""Durability: a worker process killed mid-fit; the fit is retried on another worker and resumes from
its last checkpoint, and the model is the same as an uninterrupted fit."""

from __future__ import annotations

import asyncio
import signal
import uuid

import pandas as pd

from core.accounts import User
from core.datasets import dataset_path
from ml.catalog import get_model
from ml.evaluation import metrics_for
from ml.fitting import reference_fit
from ml.training import prepare, split
from orchestration.contracts import TrainRequest
from tests.helpers import (
    classification_csv,
    eventually,
    finished_run,
    start_worker_process,
    stop_processes,
    wait_for_workers,
)

PARAMS = {"n_estimators": 300, "min_samples_leaf": 1}


def start_worker(settings, address: str):
    return start_worker_process(settings, address, TRAINEASY_CHECKPOINT_SECONDS="0")  # the forest grows in parts, each saved


async def test_killed_worker_process_resumes_from_checkpoint(client, settings, service):
    user = User(f"res_{uuid.uuid4().hex[:6]}")
    address = client.service_client.config.target_host
    first = start_worker(settings, address)
    second = None
    try:
        await wait_for_workers(client, settings, 1)
        ds = await service.upload_dataset(user, "big.csv", classification_csv(rows=30000))
        run_id = await service.start_training(
            user, TrainRequest(user.name, ds.dataset_id, "bought", "random_forest_classifier", PARAMS, seed=3)
        )
        checkpoint = service.storage.run_dir(user.name, run_id) / "checkpoint.json"

        async def checkpointed():
            return checkpoint.is_file()

        await eventually(checkpointed, timeout=180, interval=0.2)
        first.send_signal(signal.SIGKILL)  # no goodbye: the server notices through the heartbeat timeout
        first.wait()
        second = start_worker(settings, address)
        view = await finished_run(service, user, run_id, timeout=240)
    finally:
        stop_processes(first, second)
    assert view.status == "completed", view.error
    fit = next(s for s in view.stages if s.name == "fit")
    assert fit.attempt == 2
    assert view.facts.resumed_from_step >= 1

    # the resumed model is the model an uninterrupted fit gives
    spec = get_model("random_forest_classifier")
    prep = prepare(pd.read_parquet(dataset_path(service.storage, user.name, ds.dataset_id)), "bought", spec)
    train, test = split(prep, 0.2, 3, stratify=True)
    ref = await asyncio.to_thread(reference_fit, spec, PARAMS, 3, prep.X.iloc[train], prep.y.iloc[train])
    expected = metrics_for("classification", prep.y.iloc[test], ref.predict(prep.X.iloc[test]))
    assert view.metrics["accuracy"] == expected["accuracy"]
    assert view.metrics["f1_macro"] == expected["f1_macro"]
