"""Every action through the service lands in the audit log: who, from where, what, on what, and how it ended."""

from __future__ import annotations

import uuid

import pytest

from core.accounts import User
from orchestration.contracts import TrainRequest
from orchestration.errors import NotFound, UserError
from tests.helpers import classification_csv, finished_run, running_workers


async def test_upload_launch_download_delete_and_refusals_are_audited(client, settings, service):
    alice = User(f"alice_{uuid.uuid4().hex[:6]}", address="203.0.113.7")
    mallory = User(f"mallory_{uuid.uuid4().hex[:6]}", address="198.51.100.9")
    async with running_workers(client, settings):
        ds = await service.upload_dataset(alice, "shop.csv", classification_csv())
        with pytest.raises(UserError):
            await service.upload_dataset(alice, "empty.csv", b"")
        run_id = await service.start_training(alice, TrainRequest(alice.name, ds.dataset_id, "bought", "logistic_regression"))
        await finished_run(service, alice, run_id)
        with pytest.raises(NotFound):
            await service.cancel_run(mallory, run_id)  # someone else's run
        model = service.list_models(alice)[0]
        service.model_download(alice, model.id)
        service.delete_model(alice, model.id)
    mine = {(e.action, e.outcome, e.object) for e in service.audit.query(actor=alice.name)}
    assert ("upload", "ok", ds.dataset_id) in mine
    assert ("upload", "refused", "empty.csv") in mine
    assert ("launch", "ok", run_id) in mine
    assert ("download", "ok", f"model {model.id}") in mine
    assert ("delete", "ok", f"model {model.id}") in mine
    assert {e.address for e in service.audit.query(actor=alice.name)} == {"203.0.113.7"}
    theirs = service.audit.query(actor=mallory.name)
    assert [(e.action, e.outcome, e.object, e.address) for e in theirs] == [("cancel", "refused", run_id, "198.51.100.9")]
    assert service.audit.verify().ok
