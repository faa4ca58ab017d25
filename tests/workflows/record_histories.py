"""Re-record the committed workflow histories used by the replay test (run by hand after an intended
change to workflow code: `.venv/bin/python -m tests.workflows.record_histories [name ...]`).

Record only the new ones after a versioned change (`workflow.patched`): the old histories are the proof
that workflows started by the previous version still replay. Names: training, batch, batch_cancelled.
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
from orchestration.service import TrainEasyService
from tests.helpers import BIN, classification_csv, eventually, finished_run, running_workers, test_settings

OUT = Path(__file__).parent / "histories"
NAMES = ("training", "batch", "batch_cancelled")


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


async def _closed(handle) -> bool:
    return (await handle.describe()).close_time is not None


async def main(names: tuple[str, ...] = NAMES) -> None:
    # the default (unencrypted) converter on purpose: committed histories must replay without a secret key
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_startup_timeout=timedelta(seconds=60),
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
