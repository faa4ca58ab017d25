"""The model lifecycle through the service, on a real Temporal server and real workers: retention previews
and deletes exactly what it showed, for the acting user only; a dataset is deleted only when no run on it
is in flight, with its dependents shown first, the storage it held given back, and its models still
working."""

from __future__ import annotations

import io
import uuid

import pytest

from core.accounts import User
from core.datasets import ingest_csv
from ml.persist import load_model
from orchestration.contracts import TrainRequest
from orchestration.errors import NotFound, UserError
from tests.helpers import classification_csv, finished_run, running_workers


def _user(prefix: str) -> User:
    return User(f"{prefix}_{uuid.uuid4().hex[:6]}")


def _register(service, owner: str, dataset: str, tags=()) -> int:
    """A version registered as the register_model activity does, without training (the service's calls are under test)."""
    model = service.storage.root / "m.skops"
    model.write_bytes(b"m" * 500)
    card = {"dataset": {"id": dataset, "name": f"{dataset}.csv"}, "target": "y", "task": "classification", "metrics": {}}
    return service.registry.register(owner, "rf", f"train-{owner}-{uuid.uuid4().hex}", model, card, tags).id


async def test_retention_preview_then_apply_exactly_that_for_the_acting_user_only(service):
    alice, bob = _user("ret_a"), _user("ret_b")
    best = _register(service, alice.name, "d1", tags=("best of batch-x",))
    d1 = [_register(service, alice.name, "d1") for _ in range(3)]
    only_d2 = _register(service, alice.name, "d2")
    bobs = [_register(service, bob.name, "d1") for _ in range(3)]

    plan = service.retention_preview(alice, 1)
    assert plan.ids == {d1[0], d1[1]}  # not the tagged one, not d2's only version, not bob's
    assert [r.id for r in plan.tagged] == [best]
    assert len(service.list_models(alice)) == 5, "a preview deletes nothing"

    # bob cannot delete alice's versions by naming them: refused, nothing deleted, audited
    with pytest.raises(UserError):
        service.apply_retention(bob, 1, plan.ids)
    assert len(service.list_models(alice)) == 5
    assert service.retention_preview(bob, 1).ids == set(bobs[:2])

    result = service.apply_retention(alice, 1, plan.ids)
    assert {r.id for r in result.deleted} == plan.ids and result.freed_bytes > 0
    assert {m.id for m in service.list_models(alice)} == {best, d1[2], only_d2}
    assert len(service.list_models(bob)) == 3
    assert service.keep_last(alice) == 1

    trail = {(e.actor, e.outcome, e.object) for e in service.audit.query(action_prefix="retention")}
    assert (alice.name, "ok", "keep last 1: 2 versions") in trail
    assert (bob.name, "refused", "keep last 1: 2 versions") in trail


async def test_a_dataset_is_deleted_only_when_no_run_on_it_is_in_flight(client, settings, service, tmp_path):
    alice, bob = _user("dsdel_a"), _user("dsdel_b")
    async with running_workers(client, settings):
        ds = await service.upload_dataset(alice, "shop.csv", classification_csv(rows=150))
        kept = await service.upload_dataset(alice, "other.csv", classification_csv(rows=120, seed=3))
        run_id = await service.start_training(alice, TrainRequest(alice.name, ds.dataset_id, "bought", "logistic_regression"))
        assert (await finished_run(service, alice, run_id)).status == "completed"
    (model,) = service.list_models(alice)

    # no worker now: a new run on the dataset stays in flight
    in_flight = await service.start_training(alice, TrainRequest(alice.name, ds.dataset_id, "bought", "gaussian_nb"))
    deps = await service.dataset_dependents(alice, ds.dataset_id)
    assert [m.id for m in deps.models] == [model.id]
    assert in_flight in deps.runs_in_flight and not deps.can_delete
    assert (await service.dataset_dependents(alice, kept.dataset_id)).runs_in_flight == ()
    with pytest.raises(UserError, match="still in flight"):
        await service.delete_dataset(alice, ds.dataset_id)
    assert service.get_dataset(alice, ds.dataset_id).name == "shop.csv"

    # another user's dataset id is "not found", to look at and to delete
    with pytest.raises(NotFound):
        await service.dataset_dependents(bob, ds.dataset_id)
    with pytest.raises(NotFound):
        await service.delete_dataset(bob, ds.dataset_id)
    assert service.get_dataset(alice, ds.dataset_id)

    await client.get_workflow_handle(in_flight).terminate("test: the run is over")
    before = (await service.usage(alice)).stored_bytes
    gone = await service.delete_dataset(alice, ds.dataset_id)
    assert gone.freed_bytes > 0 and gone.models_kept == 1
    assert (await service.usage(alice)).stored_bytes == before - gone.freed_bytes
    assert [d.dataset_id for d in service.list_datasets(alice)] == [kept.dataset_id]
    with pytest.raises(NotFound):
        service.get_dataset(alice, ds.dataset_id)
    with pytest.raises(NotFound):
        await service.start_training(alice, TrainRequest(alice.name, ds.dataset_id, "bought", "gaussian_nb"))

    trail = {(e.actor, e.outcome, e.object) for e in service.audit.query(action_prefix="delete")}
    assert (alice.name, "refused", f"dataset {ds.dataset_id}") in trail
    assert (bob.name, "refused", f"dataset {ds.dataset_id}") in trail
    assert (alice.name, "ok", f"dataset {ds.dataset_id}") in trail

    # the model trained on it still downloads, loads and predicts
    blob, _ = service.model_download(alice, model.id)
    (tmp_path / "m.skops").write_bytes(blob)
    assert hasattr(load_model(tmp_path / "m.skops"), "predict")
    async with running_workers(client, settings):
        result = await service.predict(alice, model.id, "new.csv", b"age,income,city\n30,70.5,paris\n61,20.0,lyon\n")
    assert result.rows == 2
    out = service.prediction_file(alice, result.file)
    assert b"prediction" in io.BytesIO(out).readline()


async def test_a_run_that_starts_while_the_delete_checks_keeps_its_dataset(service, monkeypatch):
    """The dataset is hidden before the second check; a run found then puts it back and refuses."""
    alice = _user("dsrace")
    info = ingest_csv(service.storage, alice.name, classification_csv(rows=50), "race.csv", 2**20)
    answers = iter([(), ("train-x",)])
    seen = []

    async def runs_on_dataset(owner, dataset_id):
        seen.append([d.dataset_id for d in service.list_datasets(alice)])
        return next(answers)

    monkeypatch.setattr(service, "_runs_on_dataset", runs_on_dataset)
    with pytest.raises(UserError, match="still in flight"):
        await service.delete_dataset(alice, info.dataset_id)
    assert seen == [[info.dataset_id], []], "the second check ran with the dataset hidden"
    assert [d.dataset_id for d in service.list_datasets(alice)] == [info.dataset_id]
    assert service.get_dataset(alice, info.dataset_id).rows == 50
