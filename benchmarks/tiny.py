"""Tiny-run figure: what TrainEasy adds to a tiny fit (its run time minus the same work done directly), against
the cost of an empty 6-activity workflow on the same server: (TrainEasy − direct) / empty workflow."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from temporalio.worker import Worker

from benchmarks.batch import job
from benchmarks.data import TARGET, write_csv
from benchmarks.empty_workflow import STAGES, EmptyWorkflow, noop
from benchmarks.harness import Figure, Series, interleaved
from benchmarks.sizes import Sizes
from benchmarks.stack import OWNER, BenchStack
from core.datasets import dataset_path

MODEL = "logistic_regression"
ROWS = 200
LIMIT = 1.5


async def tiny_figure(stack: BenchStack, sizes: Sizes) -> tuple[list[Figure], str]:
    """The figure, and the tiny run's id (its history is the small side of the history figure)."""
    csv = write_csv(sizes.folder, ROWS, 4)
    dataset_id = await stack.upload(csv.name, csv.read_bytes())
    parquet = str(dataset_path(stack.storage, OWNER, dataset_id))
    queue = f"bench-empty-{uuid.uuid4().hex[:6]}"
    runs: list[str] = []

    async def traineasy() -> float:
        started = time.perf_counter()
        runs.append((await stack.train(dataset_id, TARGET, MODEL, {})).run_id)
        return time.perf_counter() - started

    def direct() -> float:
        started = time.perf_counter()
        job(parquet, MODEL, {})
        return time.perf_counter() - started

    async def empty() -> float:
        started = time.perf_counter()
        await stack.client.execute_workflow(EmptyWorkflow.run, STAGES, id=f"bench-empty-{uuid.uuid4().hex}", task_queue=queue)
        return time.perf_counter() - started

    with ThreadPoolExecutor(4) as pool:
        worker = Worker(stack.client, task_queue=queue, workflows=[EmptyWorkflow], activities=[noop], activity_executor=pool)
        async with worker:
            direct()  # the first call imports scikit-learn's modules: not part of any side
            await empty()
            for _ in range(stack.workers):  # nor is a worker's first run (its fork server's first child, caches)
                await traineasy()
            ours, base, floor = await interleaved(
                [traineasy, direct, empty], sizes.tiny_repeats, "tiny (s): TrainEasy, direct, empty"
            )
    added = Series([a - b for a, b in zip(ours.values, base.values, strict=True)])
    ratios = Series([a / e for a, e in zip(added.values, floor.values, strict=True)])
    note = f"{MODEL} on {ROWS} rows; TrainEasy {ours.median * 1000:.0f} ms, direct {base.median * 1000:.0f} ms"
    figure = Figure(
        "tiny run: (TrainEasy − direct) / empty 6-activity workflow",
        "ms",
        added.median * 1000,
        floor.median * 1000,
        ratios,
        f"≤ {LIMIT:g}",
        ratios.median <= LIMIT,
        note,
        len(ratios.values),
    )
    return [figure], runs[-1]
