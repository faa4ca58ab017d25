"""End-to-end figures, through the service and real worker processes:
- a ~10 s random forest run against one direct fit + evaluation, with the `progress` query's p95 during its fit
  (against describe(), a server round trip that needs no worker, measured in the same moments);
- the 1M x 20 histogram gradient boosting upload + run against the plain pandas + scikit-learn script (a fresh
  process), with the workers' peak memory against the script's, and the run's Temporal history size."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import timedelta

from benchmarks.data import TARGET, write_csv
from benchmarks.harness import ONE_THREAD, Figure, Series, TreePeak, interleaved, ratio_figure, run_child
from benchmarks.plain_script import PARAMS
from benchmarks.sizes import Sizes
from benchmarks.stack import OWNER, BenchStack, stage_seconds
from core.datasets import dataset_path
from orchestration.contracts import RunProgress, TrainRequest
from orchestration.workflows.training import TrainingWorkflow

FOREST = "random_forest_classifier"
HIST = "hist_gradient_boosting_classifier"
HISTORY_LIMIT_KB = 64.0
QUERY_LIMIT_MS = 100.0
# The run is watched as eight open run pages watch it (each queries every 2 s, ui/run_view.py): enough queries for
# their p95, without forty RPCs a second (a query and a describe every 50 ms) slowing the run it times
QUERY_EVERY = 0.25


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def direct_fit(parquet: str, params: dict) -> float:
    """One fit of the run's pipeline and its evaluation, in this process: what TrainEasy's run computes, directly."""
    import pandas as pd

    from ml.catalog import get_model
    from ml.evaluation import evaluate, feature_importance
    from ml.training import make_pipeline, prepare, split

    started = time.perf_counter()
    spec = get_model(FOREST)
    prep = prepare(pd.read_parquet(parquet), TARGET, spec)
    train, test = split(prep, 0.2, 42, stratify=True)
    X, y = prep.X.iloc[train], prep.y.iloc[train]
    pipeline = make_pipeline(spec, params, 42, X).fit(X, y)
    evaluate(pipeline, spec.task, prep.X.iloc[test], prep.y.iloc[test])
    feature_importance(pipeline, prep.X.iloc[test], prep.y.iloc[test], 42)
    return time.perf_counter() - started


Sample = tuple[bool, float, float]  # (in the fit stage, query ms, describe ms)


async def watched_run(stack: BenchStack, dataset_id: str, params: dict, samples: list[Sample], runs: list[RunProgress]) -> float:
    """Launch a forest run and wait for it, querying `progress` (then describe) every QUERY_EVERY seconds."""
    started = time.perf_counter()
    request = TrainRequest(OWNER, dataset_id, TARGET, FOREST, params)
    run_id = await stack.service.start_training(stack.user, request)
    handle = stack.client.get_workflow_handle_for(TrainingWorkflow.run, run_id)
    result = asyncio.ensure_future(handle.result(rpc_timeout=timedelta(hours=1)))
    while not result.done():
        t0 = time.perf_counter()
        progress = await handle.query(TrainingWorkflow.progress, rpc_timeout=timedelta(seconds=10))
        t1 = time.perf_counter()
        await handle.describe(rpc_timeout=timedelta(seconds=10))
        t2 = time.perf_counter()
        if progress is not None:
            samples.append((progress.stage == "fit", (t1 - t0) * 1000, (t2 - t1) * 1000))
        await asyncio.wait([result], timeout=QUERY_EVERY)
    runs.append(await result)
    return time.perf_counter() - started


async def forest_figures(stack: BenchStack, sizes: Sizes) -> list[Figure]:
    csv = write_csv(sizes.folder, sizes.forest_rows, 20)
    dataset_id = await stack.upload(csv.name, csv.read_bytes())
    parquet = str(dataset_path(stack.storage, OWNER, dataset_id))
    params = {"n_estimators": sizes.forest_trees}
    samples: list[Sample] = []
    runs: list[RunProgress] = []
    ours, base = await interleaved(
        [lambda: watched_run(stack, dataset_id, params, samples, runs), lambda: direct_fit(parquet, params)],
        sizes.forest_repeats,
        "forest (s): TrainEasy, direct",
    )
    note = f"{sizes.forest_trees} trees on {sizes.forest_rows} x 20; TrainEasy's median stage seconds: {stage_seconds(runs)}"
    figures = [ratio_figure("random forest end to end vs a direct single fit + evaluation", "s", ours, base, 1.05, note)]
    during_fit = [(q, d) for fitting, q, d in samples if fitting]
    where = f"{len(during_fit)} queries during the forest's fit stage"
    if not during_fit:  # a quick fit may end before a query lands in it: all stages then, said so
        during_fit, where = [(q, d) for _, q, d in samples], f"no query landed in the fit; {len(samples)} over the run"
    q, d = p95([q for q, _ in during_fit]), p95([d for _, d in during_fit])
    note = f"{where}; baseline: describe() p95, each timed right after a query"
    figures.append(
        Figure(
            "`progress` query p95 during a fit", "ms", q, d, Series([q / d]), f"< {QUERY_LIMIT_MS:g} ms", q < QUERY_LIMIT_MS, note
        )
    )
    return figures


async def big_figures(stack: BenchStack, sizes: Sizes, tiny_run: str) -> list[Figure]:
    csv = write_csv(sizes.folder, sizes.big_rows, 20)
    params = {k: v for k, v in PARAMS.items() if k != "early_stopping"}  # TrainEasy fixes early_stopping=False
    worker_mb, script_mb, history = Series(), Series(), Series()
    upload_s: list[float] = []
    runs: list[RunProgress] = []

    async def traineasy() -> float:
        await stack.start_workers()  # fresh processes: their peak is this run's
        data = csv.read_bytes()  # the browser's upload, not timed
        with TreePeak(stack.worker_pids) as peak:
            started = time.perf_counter()
            dataset_id = await stack.upload(csv.name, data)
            uploaded = time.perf_counter()
            run = await stack.train(dataset_id, TARGET, HIST, params)
            elapsed = time.perf_counter() - started
        upload_s.append(uploaded - started)
        runs.append(run)
        worker_mb.values.append(peak.peak_mb)
        history.values.append(await stack.history_bytes(run.run_id) / 1024)
        await stack.service.delete_dataset(stack.user, dataset_id)  # the next repeat ingests again (same content hash)
        return elapsed

    def plain() -> float:
        result = run_child("benchmarks.plain_script", str(csv), env=ONE_THREAD)  # one thread, as a worker fits
        script_mb.values.append(result["own_peak_mb"])
        return float(result["seconds"])

    ours, base = await interleaved([traineasy, plain], sizes.big_repeats, f"{sizes.big_rows:,} rows (s): TrainEasy, plain script")
    tiny_kb = await stack.history_bytes(tiny_run) / 1024
    history_ratio = Series([kb / tiny_kb for kb in history.values])
    size = (
        f"{sizes.big_rows} x 20, {csv.stat().st_size / 2**20:.0f} MB CSV; TrainEasy's median seconds: upload "
        f"{statistics.median(upload_s):.1f}, then stages {stage_seconds(runs)}"
    )
    history_note = f"the {sizes.big_rows}-row run's history against the tiny run's ({tiny_kb:.1f} KB): flat in data size is 1.0"
    return [
        ratio_figure(
            "histogram gradient boosting end to end (upload + run) vs a plain pandas + scikit-learn script",
            "s",
            ours,
            base,
            1.15,
            size,
        ),
        ratio_figure(
            "worker peak memory during that run vs the plain script's peak",
            "MB",
            worker_mb,
            script_mb,
            1.1,
            "highest single process of the fresh workers' trees",
        ),
        Figure(
            "Temporal history of a run",
            "KB",
            history.median,
            tiny_kb,
            history_ratio,
            f"< {HISTORY_LIMIT_KB:g} KB",
            max(history.values) < HISTORY_LIMIT_KB,
            history_note,
            len(history.values),
        ),
    ]
