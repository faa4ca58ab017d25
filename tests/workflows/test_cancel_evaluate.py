"""A cancel during `evaluate` (permutation importance: features x repeats predictions) stops the evaluation
before the run reports "cancelled", so the training slot is really free. Real dev server, the real worker
code and the real evaluate_model, wrapped only to record when it ends."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pandas as pd
from temporalio import activity

from core.accounts import User
from core.storage import Storage
from orchestration.contracts import StageResult, TrainInput, TrainRequest
from orchestration.training_activities import TrainingActivities
from tests.helpers import eventually, finished_run, running_workers


def wide_csv(rows: int = 4000, features: int = 150, seed: int = 0) -> bytes:
    """Many features make permutation importance slow for k-NN (each of 150 x 3 permutations re-predicts
    800 held-out rows against 3200: ~20 s on one core of the development machine), while its fit is instant."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, features)).round(3), columns=[f"f{i}" for i in range(features)])
    df["label"] = np.where(df.f0 + df.f1 > 0, "a", "b")
    return df.to_csv(index=False).encode()


async def test_cancel_during_evaluate_stops_it_before_the_run_says_cancelled(client, settings, service):
    user = User(f"ev_{uuid.uuid4().hex[:6]}")
    real = TrainingActivities(Storage(settings.home), settings)
    events: dict[str, float] = {}

    @activity.defn(name="evaluate_model")
    def evaluate_model(inp: TrainInput) -> StageResult:
        events["started"] = time.monotonic()
        try:
            return real.evaluate_model(inp)
        finally:
            events["ended"] = time.monotonic()

    async with running_workers(client, settings, {"evaluate_model": evaluate_model}):
        ds = await service.upload_dataset(user, "wide.csv", wide_csv())
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "label", "knn_classifier"))

        async def evaluating():
            return "started" in events

        await eventually(evaluating, timeout=120, interval=0.1)
        await asyncio.sleep(2)  # inside the permutation importance
        assert "ended" not in events, "the evaluation is too quick for this test"
        await service.cancel_run(user, run_id)
        view = await finished_run(service, user, run_id, timeout=60)
        ended_when_reported = events.get("ended")
    assert view.status == "cancelled", view.error
    assert ended_when_reported is not None, "the run said cancelled while the evaluation still held the training slot"
    assert next(s for s in view.stages if s.name == "evaluate").status == "cancelled"
    assert not (service.storage.run_dir(user.name, run_id) / "evaluation.json").exists()
    assert service.registry.by_run(user.name, run_id) is None
