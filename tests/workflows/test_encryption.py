"""Encrypted workflow data: what Temporal stores reveals no dataset, column, parameter or prediction, and a
client without the payload key cannot get a workflow executed."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import subprocess
import uuid

import numpy as np
import pandas as pd
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from core.accounts import User
from orchestration.codec import KEY_ID_META
from orchestration.contracts import IngestRequest, TrainInput, TrainRequest, io_queue
from orchestration.workflows import IngestWorkflow, TrainingWorkflow
from tests.helpers import BIN, eventually, finished_run, running_workers

FILE = "secret-plans.csv"
PREDICT_FILE = "secret-plans-q3.csv"
C_VALUE = 0.0123457  # a parameter value that appears nowhere else
SECRETS = [
    "secret-plans",
    "zebra_income_col",
    "zebra_bought_flag",
    "quokkaville",
    "wombatcity",
    "zebra_comment_col",
    "narwhal-note",
    "quokkatown",
    "0.0123457",
    "12345.678",
    "zebra_rare_class",
]


def _csv(rows: int = 120) -> bytes:
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {"zebra_income_col": rng.normal(50, 15, rows).round(2), "city": rng.choice(["quokkaville", "wombatcity"], rows)}
    )
    df["zebra_bought_flag"] = np.where(df.zebra_income_col + rng.normal(0, 5, rows) > 50, "yes", "no")
    return df.to_csv(index=False).encode()


def _strings(node):
    """Every string in the CLI's JSON history, plus what each one base64-decodes to (payload data and
    metadata are base64 in that JSON: a plaintext payload would only show up decoded)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node
        try:
            yield base64.b64decode(node, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            pass
    elif node is not None:
        yield json.dumps(node)


def raw_history(client: Client, workflow_id: str, home) -> str:
    """The history as the `temporal` CLI prints it, with no codec endpoint (a clean environment)."""
    proc = subprocess.run(
        [
            str(BIN / "temporal"),
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--output",
            "json",
            "--address",
            client.service_client.config.target_host,
            "--namespace",
            client.namespace,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stderr
    return "\n".join(_strings(json.loads(proc.stdout)))


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


async def test_history_holds_no_plaintext_data(client, settings, service, tmp_path):
    user = User(f"enc_{uuid.uuid4().hex[:6]}")
    async with running_workers(client, settings):
        ds = await service.upload_dataset(user, FILE, _csv())
        assert ds.name == FILE  # the keyed client reads the encrypted result
        run_id = await service.start_training(
            user, TrainRequest(user.name, ds.dataset_id, "zebra_bought_flag", "logistic_regression", {"C": C_VALUE})
        )
        view = await finished_run(service, user, run_id)
        assert view.status == "completed", view.error
        assert view.facts and view.metrics
        # a failed run: its message names the class the load stage refuses (a class of one row), and travels as
        # an encrypted failure attribute
        odd = await service.upload_dataset(user, FILE, _csv() + b"1.0,quokkaville,zebra_rare_class\n")
        failed_id = await service.start_training(
            user, TrainRequest(user.name, odd.dataset_id, "zebra_bought_flag", "logistic_regression")
        )
        failed = await finished_run(service, user, failed_id)
        assert failed.status == "failed" and "zebra_rare_class" in failed.error
        model = service.list_models(user)[0]
        rows = "zebra_income_col,city,zebra_comment_col\n12345.678,quokkatown,narwhal-note\n40.5,wombatcity,\n"
        result = await service.predict(user, model.id, PREDICT_FILE, rows.encode())
    assert result.rows == 2 and any("quokkatown" in n for n in result.notes)
    assert result.preview[0]["zebra_comment_col"] == "narwhal-note"

    workflow_ids = [run_id, failed_id]
    async for wf in client.list_workflows(f"Owner = '{user.name}'"):
        workflow_ids.append(wf.id)
    kinds = {wid.split("-")[0] for wid in workflow_ids}
    assert {"ingest", "train", "predict"} <= kinds, workflow_ids
    for wid in set(workflow_ids):
        text = raw_history(client, wid, tmp_path)
        assert not leaks(text), f"{wid} shows {leaks(text)} in plain text"
        assert "binary/encrypted" in text and KEY_ID_META in text, "the payloads are there, encrypted"


async def test_a_client_without_the_key_gets_nothing_executed(client, settings, service, tmp_path):
    keyless = await Client.connect(client.service_client.config.target_host, namespace=client.namespace)
    user = User(f"nokey_{uuid.uuid4().hex[:6]}")
    async with running_workers(client, settings):
        plain_train = await keyless.start_workflow(
            TrainingWorkflow.run,
            TrainInput(
                f"train-{user.name}-{uuid.uuid4().hex}",
                TrainRequest(user.name, "0" * 16, "zebra_bought_flag", "logistic_regression", {"C": C_VALUE}),
            ),
            id=f"train-{user.name}-{uuid.uuid4().hex}",
            task_queue=settings.task_queue,
        )
        plain_ingest = await keyless.start_workflow(
            IngestWorkflow.run,
            IngestRequest(user.name, "x" * 32 + ".csv", FILE, 1000),
            id=f"ingest-{user.name}-{uuid.uuid4().hex}",
            task_queue=io_queue(settings.task_queue),
        )
        handles = [client.get_workflow_handle(h.id) for h in (plain_train, plain_ingest)]

        async def refused_by_workers():
            histories = [await h.fetch_history() for h in handles]
            return (
                all(any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in hist.events) for hist in histories)
                and histories
            )

        histories = await eventually(refused_by_workers, timeout=30)
        await asyncio.sleep(6)  # long enough for a worker that accepted it to schedule an activity
        # meanwhile the keyed service is served by the same workers on the same queues
        ds = await service.upload_dataset(user, FILE, _csv())
        assert ds.rows == 120
        histories = [await h.fetch_history() for h in handles]
    try:
        for history in histories:
            types = {e.event_type for e in history.events}
            assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in types
            assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED not in types
            failure = next(
                e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ).workflow_task_failed_event_attributes.failure
            # the workers' failure report is itself encrypted; with the key it says why
            assert failure.message == "Encoded failure"
            assert "unencrypted payload" in str(await client.data_converter.decode_failure(failure))
        # the scanner used above does see plaintext: the keyless client's input is readable in its history
        assert "zebra_bought_flag" in raw_history(client, plain_train.id, tmp_path)
        assert FILE in raw_history(client, plain_ingest.id, tmp_path)
    finally:
        for handle in handles:
            await handle.terminate("test over")


@pytest.mark.parametrize("days", [7, 30])
async def test_history_retention_is_set_on_the_namespace(client, days):
    from datetime import timedelta

    from orchestration.client import ensure_history_retention, history_retention

    await ensure_history_retention(client, days)
    assert await history_retention(client) == timedelta(days=days)
    assert await ensure_history_retention(client, days) is False  # already so: nothing sent


async def test_a_ciphertext_copied_into_another_users_workflow_is_refused(client, settings, service):
    """Encryption hides the data but a valid ciphertext can be copied: a worker refuses input that names
    another run or owner than its workflow id, and the app never shows a result copied from elsewhere."""
    from temporalio.client import WorkflowFailureError
    from temporalio.common import RawValue

    from orchestration.errors import NotFound

    alice, bob = User(f"alice_{uuid.uuid4().hex[:6]}"), User(f"bob_{uuid.uuid4().hex[:6]}")
    keyless = await Client.connect(client.service_client.config.target_host, namespace=client.namespace)
    async with running_workers(client, settings):
        ds = await service.upload_dataset(alice, FILE, _csv())
        run_id = await service.start_training(
            alice, TrainRequest(alice.name, ds.dataset_id, "zebra_bought_flag", "logistic_regression")
        )
        assert (await finished_run(service, alice, run_id)).status == "completed"
        started = (await keyless.get_workflow_handle(run_id).fetch_history()).events[0]
        alices_input = started.workflow_execution_started_event_attributes.input.payloads[0]
        assert alices_input.metadata["encoding"] == b"binary/encrypted"
        copied = f"train-{bob.name}-{uuid.uuid4().hex}"
        await keyless.start_workflow("TrainingWorkflow", RawValue(alices_input), id=copied, task_queue=settings.task_queue)
        with pytest.raises(WorkflowFailureError) as failed:
            await client.get_workflow_handle(copied).result()
    assert "Refused: the input belongs to another" in str(failed.value.cause)
    assert not list((settings.home / "users").glob(f"{bob.name}/runs/*"))
    assert len(service.list_models(alice)) == 1  # nothing ran again under alice's name either
    with pytest.raises(NotFound):
        await service.get_run(bob, copied)  # nor does bob get to see alice's run through it
