"""Re-record the committed workflow histories used by the replay test (run by hand after an intended
change to workflow code: `.venv/bin/python -m tests.workflows.record_histories`)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from core.accounts import User
from orchestration.contracts import SEARCH_ATTRIBUTES, BatchItem, BatchRequest, TrainRequest
from orchestration.service import TrainEasyService
from tests.helpers import BIN, classification_csv, finished_run, running_workers, test_settings

OUT = Path(__file__).parent / "histories"


async def main() -> None:
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
            async with running_workers(env.client, settings):
                ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=150))
                run_id = await service.start_training(
                    user,
                    TrainRequest(
                        user.name, ds.dataset_id, "bought", "random_forest_classifier", {"n_estimators": 20}, cv_folds=3
                    ),
                )
                await finished_run(service, user, run_id)
                batch_id = await service.start_batch(
                    user,
                    BatchRequest(
                        user.name, ds.dataset_id, "bought", [BatchItem("gaussian_nb"), BatchItem("logistic_regression")]
                    ),
                )
                await env.client.get_workflow_handle(batch_id).result()
            for name, wid in (("training", run_id), ("batch", batch_id)):
                history = await env.client.get_workflow_handle(wid).fetch_history()
                (OUT / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
