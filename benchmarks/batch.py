"""Batch benchmark: the same 8 training jobs three ways, side by side in one run.

1. a plain sequential loop in this process;
2. joblib `Parallel(n_jobs=<cores>)` (loky processes);
3. a TrainEasy batch: BatchTrainingWorkflow on a real Temporal dev server with one worker process per core.

A job is what a TrainEasy run computes: prepare + split, the (incremental) fit, held-out metrics and
permutation importance. The loop and joblib run exactly that in memory; the batch also loads Parquet,
saves the model and registers it, which is its real overhead. Ratios are wall-time ratios.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.datasets import make_classification

from core.config import Settings, load_settings
from core.datasets import dataset_path, ingest_csv
from core.storage import Storage

OWNER = "bench"
JOBS = [("random_forest_classifier", {"n_estimators": 80, "min_samples_leaf": leaf}) for leaf in range(1, 9)]
ROWS, FEATURES = 12000, 20


def job(parquet: str, model: str, params: dict) -> float:
    from ml.catalog import get_model
    from ml.evaluation import evaluate, feature_importance
    from ml.fitting import fit
    from ml.training import make_pipeline, prepare, split

    spec = get_model(model)
    prep = prepare(pd.read_parquet(parquet), "label", spec)
    train, test = split(prep, 0.2, 42, stratify=True)
    X, y = prep.X.iloc[train], prep.y.iloc[train]
    pipeline, _ = fit(make_pipeline(spec, params, 42, X), spec, X, y, valid=(prep.X.iloc[test], prep.y.iloc[test]))
    metrics, _ = evaluate(pipeline, spec.task, prep.X.iloc[test], prep.y.iloc[test])
    feature_importance(pipeline, prep.X.iloc[test], prep.y.iloc[test], 42)
    return metrics["balanced_accuracy"]


def make_dataset(storage: Storage) -> str:
    X, y = make_classification(ROWS, FEATURES, n_informative=8, random_state=0)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(FEATURES)]).round(5)
    df["label"] = np.where(y == 1, "yes", "no")
    return ingest_csv(storage, OWNER, df.to_csv(index=False).encode(), "bench.csv", 2**31).dataset_id


async def run_batch(settings: Settings, dataset_id: str, workers: int) -> tuple[float, set[str]]:
    from temporalio.testing import WorkflowEnvironment

    from core.accounts import User
    from orchestration.client import data_converter
    from orchestration.contracts import SEARCH_ATTRIBUTES, BatchItem, BatchRequest
    from orchestration.service import TrainEasyService
    from tests.helpers import start_worker_process, stop_processes, wait_for_workers

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_startup_timeout=timedelta(seconds=60),
        data_converter=data_converter(settings),
    )  # encrypted, as the workers (same home: same key file)
    procs = []
    try:
        address = env.client.service_client.config.target_host
        procs = [start_worker_process(settings, address) for _ in range(workers)]
        await wait_for_workers(env.client, settings, workers)
        service = TrainEasyService(env.client, settings)
        user = User(OWNER)
        started = time.perf_counter()
        batch_id = await service.start_batch(
            user, BatchRequest(OWNER, dataset_id, "label", [BatchItem(m, p) for m, p in JOBS], max_parallel=workers)
        )
        result = await env.client.get_workflow_handle(batch_id).result()
        elapsed = time.perf_counter() - started
        failed = [c for c in result["children"] if c["status"] != "completed"]
        if failed:
            raise SystemExit(f"batch children failed: {failed}")
        return elapsed, {c["worker"] for c in result["children"]}
    finally:
        stop_processes(*procs)
        await env.shutdown()


def main() -> None:
    cores = os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(load_settings(), home=Path(tmp), task_queue=f"bench-{uuid.uuid4().hex[:6]}")
        storage = Storage(settings.home)
        dataset_id = make_dataset(storage)
        parquet = str(dataset_path(storage, OWNER, dataset_id))
        print(f"{len(JOBS)} jobs: random forest (80 trees) on {ROWS} x {FEATURES}; {cores} cores", flush=True)

        t = time.perf_counter()
        for model, params in JOBS:
            job(parquet, model, params)
        sequential = time.perf_counter() - t
        print(f"  sequential loop        {sequential:7.1f} s", flush=True)

        t = time.perf_counter()
        Parallel(n_jobs=cores)(delayed(job)(parquet, m, p) for m, p in JOBS)
        joblib_s = time.perf_counter() - t
        print(f"  joblib n_jobs={cores}         {joblib_s:7.1f} s", flush=True)

        batch_s, workers_used = asyncio.run(run_batch(settings, dataset_id, cores))
        print(f"  TrainEasy batch        {batch_s:7.1f} s   ({len(workers_used)} worker processes used)")
        print()
        print(f"  speed-up over sequential: joblib {sequential / joblib_s:.2f}x, TrainEasy batch {sequential / batch_s:.2f}x")
        print(f"  TrainEasy batch wall time / joblib wall time: {batch_s / joblib_s:.2f} (target <= 1.10)")
    sys.stdout.flush()
    os._exit(0)  # sdk-python #300: avoid a crash in interpreter teardown after using Temporal


if __name__ == "__main__":
    main()
