"""Re-record the committed workflow histories used by the replay test (run by hand after an intended
change to workflow code: `.venv/bin/python -m tests.workflows.record_histories [name ...]`).

Record only the new ones after a versioned change (`workflow.patched`): the old histories are the proof
that workflows started by the previous version still replay. Names: training, batch, batch_cancelled,
training_cancelled_in_save (save-honours-cancel), batch_cancelled_best (batch-best-tagged-on-cancel),
training_sticky (sticky-stages: stages on the first stage's worker, one moved to the shared queue).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from core.accounts import User
from orchestration.contracts import SEARCH_ATTRIBUTES, BatchItem, BatchRequest, StageResult, TrainInput, TrainRequest
from orchestration.dev_server import dev_server_args
from orchestration.service import TrainEasyService
from orchestration.training_activities import TrainingActivities
from tests.helpers import BIN, classification_csv, eventually, finished_run, running_workers, test_settings

OUT = Path(__file__).parent / "histories"
NAMES = ("training", "batch", "batch_cancelled", "training_cancelled_in_save", "batch_cancelled_best", "training_sticky")


@activity.defn(name="fit_model")
def slow_fit(inp: TrainInput) -> StageResult:
    """A fit that takes a minute unless cancelled: the batch is cancelled while one child fits."""
    for step in range(600):
        activity.heartbeat({"step": step, "of": 600})
        if activity.is_cancelled():
            raise CancelledError("fit cancelled")
        time.sleep(0.1)
    return StageResult(activity.info().attempt)


async def cancelled_batch(env: WorkflowEnvironment, service: TrainEasyService, user: User, dataset_id: str) -> str:
    """A batch of three, two at once, cancelled while one child fits and the other's fit waits for the slot."""
    items = [BatchItem("gaussian_nb"), BatchItem("logistic_regression"), BatchItem("decision_tree_classifier")]
    batch_id = await service.start_batch(user, BatchRequest(user.name, dataset_id, "bought", items, max_parallel=2))

    async def fitting():
        view = await service.get_batch(user, batch_id)
        return view.progress and any(p > 10 for p in view.child_percent.values())

    await eventually(fitting, timeout=90)
    handle = env.client.get_workflow_handle(batch_id)
    await handle.cancel()
    await eventually(lambda: _closed(handle), timeout=60)
    return batch_id


def slow_save(real: TrainingActivities, started: list[float]):
    """The real save, after a pause in which the run is cancelled: it registers its model after the cancel."""

    @activity.defn(name="save_model")
    def save_model(inp: TrainInput) -> StageResult:
        started.append(time.monotonic())
        time.sleep(3)
        return real.register_model(inp)

    return save_model


def fit_or_wait(real: TrainingActivities):
    """Gaussian NB fits for real; other models fit until cancelled."""

    @activity.defn(name="fit_model")
    def fit_model(inp: TrainInput) -> StageResult:
        if inp.request.model == "gaussian_nb":
            return real.fit_model(inp)
        return slow_fit(inp)

    return fit_model


async def cancelled_in_save(env: WorkflowEnvironment, service: TrainEasyService, user: User, dataset_id: str) -> str:
    """A run cancelled while its model is being registered: the version is deleted again (save-honours-cancel)."""
    started: list[float] = []
    real = TrainingActivities(service.storage, service.settings)
    async with running_workers(env.client, service.settings, {"save_model": slow_save(real, started)}):
        run_id = await service.start_training(user, TrainRequest(user.name, dataset_id, "bought", "gaussian_nb"))

        async def saving() -> bool:
            return bool(started)

        await eventually(saving, timeout=90, interval=0.1)
        handle = env.client.get_workflow_handle(run_id)
        await handle.cancel()
        await eventually(lambda: _closed(handle), timeout=60)
    return run_id


async def cancelled_batch_with_a_best(env: WorkflowEnvironment, service: TrainEasyService, user: User, dataset_id: str) -> str:
    """A batch cancelled after one child finished: its best is tagged as it closes (batch-best-tagged-on-cancel)."""
    real = TrainingActivities(service.storage, service.settings)
    async with running_workers(env.client, service.settings, {"fit_model": fit_or_wait(real)}):
        items = [BatchItem("gaussian_nb"), BatchItem("logistic_regression")]
        batch_id = await service.start_batch(user, BatchRequest(user.name, dataset_id, "bought", items, max_parallel=1))

        async def first_done() -> bool:
            view = await service.get_batch(user, batch_id)
            kids = view.progress.children if view.progress else []
            return bool(kids) and kids[0].status == "completed" and kids[1].status == "running"

        await eventually(first_done, timeout=90)
        handle = env.client.get_workflow_handle(batch_id)
        await handle.cancel()
        await eventually(lambda: _closed(handle), timeout=60)
    return batch_id


async def sticky_with_a_moved_stage(env: WorkflowEnvironment, service: TrainEasyService, user: User, dataset_id: str) -> str:
    """A run whose stages stay on the worker that ran its first (sticky-stages), with cross-validation; its worker
    refuses one stage once as busy, which then runs from the shared queue (the run follows the worker there)."""
    from workers.training_slot import TrainingSlot

    real = TrainingSlot.overbooked
    refused: list[bool] = []

    def busy_once(slot: TrainingSlot) -> bool:
        if not refused:
            refused.append(True)
            return True
        return real(slot)

    setattr(TrainingSlot, "overbooked", busy_once)  # noqa: B010  (a method swapped for this recording only)
    try:
        async with running_workers(env.client, service.settings):
            request = TrainRequest(user.name, dataset_id, "bought", "random_forest_classifier", {"n_estimators": 20}, cv_folds=3)
            run_id = await service.start_training(user, request)
            await finished_run(service, user, run_id)
    finally:
        setattr(TrainingSlot, "overbooked", real)  # noqa: B010
    return run_id


async def _closed(handle) -> bool:
    return (await handle.describe()).close_time is not None


async def main(names: tuple[str, ...] = NAMES) -> None:
    # the default (unencrypted) converter on purpose: committed histories must replay without a secret key
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_startup_timeout=timedelta(seconds=60),
        dev_server_extra_args=dev_server_args(database_file=False),  # as make run's server (orchestration/dev_server.py)
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = test_settings(Path(tmp))
            service = TrainEasyService(env.client, settings)
            user = User("recorder")
            ids: dict[str, str] = {}
            async with running_workers(env.client, settings):
                ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=150))
                if "training" in names:
                    ids["training"] = await service.start_training(
                        user,
                        TrainRequest(
                            user.name, ds.dataset_id, "bought", "random_forest_classifier", {"n_estimators": 20}, cv_folds=3
                        ),
                    )
                    await finished_run(service, user, ids["training"])
                if "batch" in names:
                    ids["batch"] = await service.start_batch(
                        user,
                        BatchRequest(
                            user.name, ds.dataset_id, "bought", [BatchItem("gaussian_nb"), BatchItem("logistic_regression")]
                        ),
                    )
                    await env.client.get_workflow_handle(ids["batch"]).result()
            if "batch_cancelled" in names:
                async with running_workers(env.client, settings, {"fit_model": slow_fit}):
                    ids["batch_cancelled"] = await cancelled_batch(env, service, user, ds.dataset_id)
            if "training_cancelled_in_save" in names:
                ids["training_cancelled_in_save"] = await cancelled_in_save(env, service, user, ds.dataset_id)
            if "batch_cancelled_best" in names:
                ids["batch_cancelled_best"] = await cancelled_batch_with_a_best(env, service, user, ds.dataset_id)
            if "training_sticky" in names:
                ids["training_sticky"] = await sticky_with_a_moved_stage(env, service, user, ds.dataset_id)
            for name, wid in ids.items():
                history = await env.client.get_workflow_handle(wid).fetch_history()
                (OUT / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    unknown = set(sys.argv[1:]) - set(NAMES)
    if unknown:
        sys.exit(f"unknown history name(s): {sorted(unknown)}; choose from {NAMES}")
    asyncio.run(main(tuple(sys.argv[1:]) or NAMES))
    sys.stdout.flush()
    os._exit(0)
