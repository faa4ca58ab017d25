"""Batch figure: the same 8 training jobs as a TrainEasy batch (BatchTrainingWorkflow, one worker process per core)
and as joblib `Parallel(n_jobs=<cores>)` (loky processes), side by side.

A job is what a TrainEasy run computes: prepare + split, the (incremental) fit, held-out metrics and permutation
importance. joblib runs exactly that from the stored Parquet; the batch also loads, saves and registers each model,
which is its real overhead. The ratio is batch wall time / joblib wall time.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import pandas as pd
from joblib import Parallel, delayed

from benchmarks.data import TARGET, write_csv
from benchmarks.harness import Figure, interleaved, ratio_figure, shut_down_loky
from benchmarks.sizes import Sizes
from benchmarks.stack import OWNER, BenchStack
from core.datasets import dataset_path
from orchestration.contracts import BatchItem, BatchRequest


def jobs(sizes: Sizes) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("random_forest_classifier", {"n_estimators": sizes.batch_trees, "min_samples_leaf": leaf})
        for leaf in range(1, sizes.batch_jobs + 1)
    ]


def job(parquet: str, model: str, params: dict) -> float:
    """One run's computation, in memory (what a joblib task does)."""
    from ml.catalog import get_model
    from ml.evaluation import evaluate, feature_importance
    from ml.fitting import fit
    from ml.training import make_pipeline, prepare, split

    spec = get_model(model)
    prep = prepare(pd.read_parquet(parquet), TARGET, spec)
    train, test = split(prep, 0.2, 42, stratify=True)
    X, y = prep.X.iloc[train], prep.y.iloc[train]
    pipeline, _ = fit(make_pipeline(spec, params, 42, X), spec, X, y, valid=(prep.X.iloc[test], prep.y.iloc[test]))
    metrics, _ = evaluate(pipeline, spec.task, prep.X.iloc[test], prep.y.iloc[test])
    feature_importance(pipeline, prep.X.iloc[test], prep.y.iloc[test], 42)
    return metrics["balanced_accuracy"]


async def batch_figure(stack: BenchStack, sizes: Sizes) -> list[Figure]:
    cores = os.cpu_count() or 1
    todo = jobs(sizes)
    csv = write_csv(sizes.folder, sizes.batch_rows, 20)
    dataset_id = await stack.upload(csv.name, csv.read_bytes())
    parquet = str(dataset_path(stack.storage, OWNER, dataset_id))
    print(f"  {len(todo)} jobs: random forest ({sizes.batch_trees} trees) on {sizes.batch_rows} x 20; {cores} cores", flush=True)
    workers_used: set[str] = set()

    async def traineasy() -> float:
        request = BatchRequest(OWNER, dataset_id, TARGET, [BatchItem(m, p) for m, p in todo], max_parallel=stack.workers)
        started = time.perf_counter()
        batch_id = await stack.service.start_batch(stack.user, request)
        result = await stack.client.get_workflow_handle(batch_id).result(rpc_timeout=timedelta(hours=1))
        elapsed = time.perf_counter() - started
        failed = [c for c in result["children"] if c["status"] != "completed"]
        if failed:
            raise RuntimeError(f"batch children failed: {failed}")
        workers_used.update(c["worker"] for c in result["children"])
        return elapsed

    def joblib_side() -> float:
        started = time.perf_counter()
        Parallel(n_jobs=cores)(delayed(job)(parquet, m, p) for m, p in todo)
        return time.perf_counter() - started

    try:
        ours, base = await interleaved([traineasy, joblib_side], sizes.batch_repeats, "batch (s): TrainEasy, joblib")
    finally:
        shut_down_loky()
    note = f"{len(todo)} forests of {sizes.batch_trees} trees, {sizes.batch_rows} rows; {len(workers_used)} workers used"
    return [ratio_figure(f"batch of {len(todo)} equal fits vs joblib", "s", ours, base, 1.10, note)]
