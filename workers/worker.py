"""Builds the Temporal workers of one process. Run several processes to use several cores.

Each process trains one model at a time (one activity slot; its fit runs in a child process with native
threads capped at 1), so a fit takes one core, and parallelism comes from running one process per core. That slot serves two
queues: the shared training queue and the process's own, where a run's later stages come so that
they find its data in memory (workers/training_slot.py).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from uuid import uuid4

from temporalio.client import Client
from temporalio.worker import Worker

from core.config import Settings, load_settings
from core.storage import Storage, sweep_tmp_files
from orchestration.activities import activity_list
from orchestration.binding import BindInputsToWorkflow
from orchestration.client import connect
from orchestration.contracts import io_queue
from orchestration.liveness import default_identity
from orchestration.stage_cache import RUNS
from orchestration.storage_errors import ClassifyStorageErrors
from orchestration.workflows import (
    BatchTrainingWorkflow,
    CheckDataWorkflow,
    IngestWorkflow,
    PredictWorkflow,
    TrainingWorkflow,
)
from orchestration.workflows.training import activity_name
from workers.beat_file import SlotUse, beat_file
from workers.training_slot import StageAffinity, TrainingSlot

TRAIN_SLOTS = 1
IO_SLOTS = 2
FORK_SERVER_WAIT = 60.0  # seconds a starting worker waits for its fit fork server at most before it polls


def own_queue(task_queue: str, identity: str | None) -> str:
    """The training queue only this process polls: unique per start, so a restarted worker never inherits
    stages sent to the process it replaces (they go to the shared queue after the workflow's short wait)."""
    return f"{task_queue}-worker-{identity or 'anon'}-{uuid4().hex[:8]}"


def build_workers(
    client: Client, settings: Settings, identity: str | None = None, replace_activities: dict[str, Callable] | None = None
) -> list[Worker]:
    """The training worker (shared queue), the data-task worker and the training worker on this process's own
    queue (sharing the training slot); tests may swap an activity by its registered name. Busy slots are
    counted (SlotUse) for the process's beat file (workers/beat_file.py): the training slot once, on the
    shared queue's name, whichever of the two queues its stage came from."""
    training, data_tasks = activity_list(Storage(settings.home), settings)
    training = [(replace_activities or {}).get(activity_name(fn), fn) for fn in training]
    slot = TrainingSlot(settings.task_queue, own_queue(settings.task_queue, identity), TRAIN_SLOTS)
    train_use, affinity = SlotUse(settings.task_queue, TRAIN_SLOTS), StageAffinity(slot, RUNS)

    def worker(task_queue: str, workflows: list[type], activities: list[Callable], slots: int, trains: bool) -> Worker:
        # the affinity first: an own-queue stage it refuses is never counted busy
        first = [affinity, train_use] if trains else [SlotUse(task_queue, slots)]
        return Worker(
            client,
            task_queue=task_queue,
            workflows=workflows,
            activities=activities,
            activity_executor=ThreadPoolExecutor(slots),
            **({"tuner": slot.tuner()} if trains else {"max_concurrent_activities": slots}),
            graceful_shutdown_timeout=timedelta(seconds=5),
            interceptors=[*first, BindInputsToWorkflow(), ClassifyStorageErrors()],
            max_heartbeat_throttle_interval=timedelta(seconds=1),  # fresh progress for the UI
            identity=identity,
        )

    return [
        worker(settings.task_queue, [TrainingWorkflow, BatchTrainingWorkflow], training, TRAIN_SLOTS, True),
        worker(io_queue(settings.task_queue), [IngestWorkflow, CheckDataWorkflow, PredictWorkflow], data_tasks, IO_SLOTS, False),
        worker(slot.own, [], training, TRAIN_SLOTS, True),
    ]


def warm_up() -> None:
    """Import the heavy libraries before polling, so that the first run does not pay for them; the fit fork server
    too, whose imports and warm-up fits go on in its own process after it starts: polling only once it serves,
    the first jobs neither wait for it nor share the cores with it (a fresh worker's 1M-row upload took 1.5 s
    longer while two fork servers warmed up beside it)."""
    import pyarrow.parquet  # noqa: F401

    import ml.evaluation  # noqa: F401  (pulls in pandas, numpy, scikit-learn)
    import ml.persist  # noqa: F401
    from ml.child_fit import start

    start()  # the fork server that single-call fits fork their child processes from
    if not fork_server_ready(FORK_SERVER_WAIT):
        print(f"worker {os.getpid()}: the fit fork server is not ready after {FORK_SERVER_WAIT:g} s; polling anyway", flush=True)
    # the libraries' objects loaded so far live as long as the process: the collector need not walk them on
    # every full collection (tens of ms each, in the middle of a stage)
    gc.freeze()


def fork_server_ready(timeout: float) -> bool:
    """Whether the fit fork server forked its first spare child within `timeout` seconds: it forks only once its
    imports and warm-up fits are done (ml/child_warmup.py). False at once if that fork failed, else after the
    timeout: fits then fork their own child, as they would anyway."""
    from ml import child_spare

    child_spare.refilled.wait(timeout)
    return child_spare.spare_pid() is not None


async def sweep_leftovers(client: Client, settings: Settings) -> list[str]:
    """Scratch files of runs that are over (a worker killed before a failed run's clean-up, a terminated run,
    runs from before the clean-up existed): deleted once per worker start. A run Temporal still calls open
    keeps its checkpoint; with Temporal unreachable nothing is deleted (orchestration.scratch). Half-written
    `.tmp` files over an hour old in users' uploads, models and datasets go too (core.storage.sweep_tmp_files)."""
    from orchestration.scratch import sweep_scratch, temporal_is_open

    try:
        stale = await asyncio.to_thread(sweep_tmp_files, Storage(settings.home))
    except OSError as exc:
        print(f"worker {os.getpid()}: leftover sweep stopped: {exc.strerror}", flush=True)
        stale = []
    if stale:
        print(f"worker {os.getpid()}: deleted {len(stale)} half-written files left by interrupted writes", flush=True)
    try:
        cleaned = await sweep_scratch(Storage(settings.home), temporal_is_open(client))
    except Exception as exc:  # a sweep that fails must not stop the worker
        print(f"worker {os.getpid()}: scratch sweep stopped: {type(exc).__name__}: {exc}", flush=True)
        return []
    if cleaned:
        print(f"worker {os.getpid()}: deleted the scratch files of {len(cleaned)} finished runs", flush=True)
    return cleaned


async def forget_idle_runs() -> None:
    """Drop the in-memory data of runs this worker no longer hears from (they moved to another worker or
    stopped) even while it gets no work: orchestration/stage_cache.py, every half minute."""
    while True:
        await asyncio.sleep(30)
        RUNS.sweep()


async def serve(settings: Settings) -> None:
    await asyncio.to_thread(warm_up)
    client = await connect(settings)
    identity = default_identity()
    workers = build_workers(client, settings, identity=identity)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runs = [asyncio.create_task(w.run()) for w in workers]
    sweep = asyncio.create_task(sweep_leftovers(client, settings))  # alongside polling, never before it
    forget = asyncio.create_task(forget_idle_runs())
    # alive for the app from now until a stop begins (a worker shutting down takes no new work)
    async with beat_file(Storage(settings.home), workers, identity):
        print(f"worker {os.getpid()} polling {settings.task_queue!r} at {settings.temporal_target}", flush=True)
        await asyncio.wait([*runs, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    sweep.cancel()
    forget.cancel()
    await asyncio.gather(*(w.shutdown() for w in workers), sweep, forget, return_exceptions=True)
    for task in runs:
        if task.done() and (error := task.exception()) is not None:
            raise error  # a worker that died on its own is an error, not a clean stop


def main() -> None:
    import sys

    from ml import child_fit

    rc = 1
    try:
        asyncio.run(serve(load_settings()))
        rc = 0
    except KeyboardInterrupt:  # Ctrl-C before serve set its signal handlers (during the warm-up)
        rc = 130
    except Exception as exc:  # one clear line for the launcher's log
        print(f"worker {os.getpid()} stopped: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        child_fit.stop()  # every way out: the fit fork server and its waiting child end with the worker, not after it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)  # sdk-python #300: interpreter teardown after Temporal can crash; exit code must be ours
