"""Through a real Temporal server and the real workers: a failed or a cancelled run leaves no scratch files
(split, checkpoints, model file), only the evaluation its page reads; the sweep at worker start cleans a closed
run's leftovers and never an open run's checkpoint; a storage error fails a stage at once, in plain words."""

from __future__ import annotations

import errno
import json
import os
import signal
import time
import uuid

import pytest
from temporalio import activity
from temporalio.exceptions import CancelledError

import orchestration.fit_stage as fit_stage
import orchestration.training_activities as training_activities
from core.accounts import User
from core.storage import Storage
from orchestration.activity_errors import STORAGE_NOT_A_FOLDER, STORAGE_PERMISSION, refuse
from orchestration.contracts import StageResult, TrainInput, TrainRequest
from orchestration.errors import UserError
from orchestration.run_data import TRUSTED_FILE, RunData
from orchestration.scratch import sweep_scratch, temporal_is_open
from tests.helpers import classification_csv, eventually, finished_run, running_workers
from tests.workflows import slow_store


@pytest.fixture
def user():
    return User(f"scratch_{uuid.uuid4().hex[:6]}")


def _files(storage: Storage, user: User, run_id: str) -> set[str]:
    run_dir = storage.run_dir(user.name, run_id)
    return {p.name for p in run_dir.iterdir()} if run_dir.is_dir() else set()


@activity.defn(name="save_model")
def refused_save(inp: TrainInput) -> StageResult:
    raise refuse("The model cannot be registered.")


async def test_a_failed_run_keeps_only_its_evaluation(client, settings, service, user, monkeypatch):
    monkeypatch.setattr(fit_stage, "CHECKPOINT_SECONDS", 0.0)  # the fit checkpoints every increment
    storage = Storage(settings.home)
    seen: dict[str, set[str]] = {}
    real = training_activities.TrainingActivities(storage, settings)

    @activity.defn(name="evaluate_model")
    def evaluate_and_look(inp: TrainInput) -> StageResult:  # the real evaluate; what the folder holds is noted
        seen["before"] = _files(storage, User(inp.request.owner), inp.run_id)
        return real.evaluate_model(inp)

    async with running_workers(client, settings, {"save_model": refused_save, "evaluate_model": evaluate_and_look}):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=300))
        request = TrainRequest(user.name, ds.dataset_id, "bought", "random_forest_classifier", {"n_estimators": 40})
        run_id = await service.start_training(user, request)
        view = await finished_run(service, user, run_id, timeout=120)
    assert view.status == "failed" and view.error == "The model cannot be registered."
    assert {"split.npz", "model.skops", "checkpoint.json"} <= seen["before"], seen  # the scratch files existed
    assert any(name.startswith("checkpoint-") for name in seen["before"])
    assert _files(storage, user, run_id) == {"evaluation.json"}, "only what the run page draws is kept"
    assert service.get_evaluation(user, run_id) is not None

    # a leftover of a closed run (a worker killed before the clean-up) goes at the next worker start
    (storage.run_dir(user.name, run_id) / "split.npz").write_bytes(b"left over")
    assert await sweep_scratch(storage, temporal_is_open(client)) == [run_id]
    assert _files(storage, user, run_id) == {"evaluation.json"}


@activity.defn(name="fit_model")
def checkpointing_fit(inp: TrainInput) -> StageResult:
    """Writes a checkpoint as the real fit does, then heartbeats until cancelled."""
    folder = _STORAGE[0].run_dir(inp.request.owner, inp.run_id)
    (folder / "checkpoint-3.skops").write_bytes(b"model")
    (folder / "checkpoint.json").write_text(json.dumps({"done": 3, "file": "checkpoint-3.skops"}))
    for step in range(600):
        activity.heartbeat({"step": step, "of": 600})
        if activity.is_cancelled():
            raise CancelledError("fit cancelled")
        time.sleep(0.1)
    return StageResult(activity.info().attempt)


_STORAGE: list[Storage] = []


async def test_a_cancelled_run_leaves_nothing_and_the_sweep_spares_an_open_run(client, settings, service, user):
    storage = Storage(settings.home)
    _STORAGE[:] = [storage]
    async with running_workers(client, settings, {"fit_model": checkpointing_fit}):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=300))
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression", {}))
        await eventually(lambda: _async(_files(storage, user, run_id) >= {"split.npz", "checkpoint.json"}), timeout=60)

        # the run is open: the sweep leaves its checkpoint alone, however old the folder
        assert await sweep_scratch(storage, temporal_is_open(client), max_age_seconds=0) == []
        assert {"split.npz", "checkpoint.json", "checkpoint-3.skops"} <= _files(storage, user, run_id)

        await service.cancel_run(user, run_id)
        view = await finished_run(service, user, run_id, timeout=60)
    assert view.status == "cancelled"
    assert _files(storage, user, run_id) == set()
    assert not storage.run_dir(user.name, run_id).exists()


async def _async(value):
    return value


async def test_a_permission_error_fails_the_stage_at_once_without_the_path(client, settings, service, user, monkeypatch):
    def denied(path, data):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(training_activities, "write_atomic", denied)
    async with running_workers(client, settings):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=200))
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression", {}))
        view = await finished_run(service, user, run_id, timeout=60)
    stage = next(s for s in view.stages if s.name == "preprocess")
    assert (view.status, stage.status, stage.attempt) == ("failed", "failed", 1), "not retried"
    assert view.error == STORAGE_PERMISSION
    assert str(settings.home) not in (view.error or "")


async def test_a_real_storage_fault_fails_a_stage_and_an_upload_plainly(client, settings, service, user):
    storage = Storage(settings.home)
    async with running_workers(client, settings):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=200))
        runs = storage.user_dir(user.name) / "runs"
        runs.write_text("not a folder")  # every run folder of this user is under a file now
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression", {}))
        view = await finished_run(service, user, run_id, timeout=60)
        stage = next(s for s in view.stages if s.name == "preprocess")
        assert (view.status, stage.status, stage.attempt) == ("failed", "failed", 1)
        assert view.error == STORAGE_NOT_A_FOLDER and str(settings.home) not in view.error

        uploads = storage.upload_dir(user.name)
        for leftover in uploads.iterdir():
            leftover.unlink()
        uploads.rmdir()
        uploads.write_text("not a folder")
        with pytest.raises(UserError) as caught:
            await service.upload_dataset(user, "more.csv", classification_csv(rows=50))
    assert str(caught.value) == STORAGE_NOT_A_FOLDER


async def test_a_completed_run_keeps_only_its_evaluation_and_a_save_retried_after_registering_is_idempotent(
    client, settings, service, user
):
    storage = Storage(settings.home)
    real = training_activities.TrainingActivities(storage, settings)
    attempts: list[int] = []

    @activity.defn(name="save_model")
    def save_then_lose_the_answer(inp: TrainInput) -> StageResult:
        """The first attempt registers and cleans up, then its answer is lost (as in a Temporal outage)."""
        attempts.append(activity.info().attempt)
        result = real.register_model(inp)
        if activity.info().attempt == 1:
            raise RuntimeError("the completion never reached the server")
        return result

    async with running_workers(client, settings, {"save_model": save_then_lose_the_answer}):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=300))
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression"))
        view = await finished_run(service, user, run_id, timeout=120)
    assert view.status == "completed", view.error
    assert attempts == [1, 2]
    record = service.registry.by_run(user.name, run_id)
    assert record is not None and record.version == 1 and view.facts.model_id == record.id
    assert _files(storage, user, run_id) == {"evaluation.json"}, "fit.json, the split and the model file are scratch"


async def test_a_run_whose_fit_child_was_killed_while_storing_the_model_leaves_only_its_evaluation(
    client, settings, service, user, tmp_path, monkeypatch
):
    """The fit's child stores the model (ml.persist.store_model); killed in the middle (kill -9, the OOM killer) it
    leaves its temporary file in the run folder, and the retried fit writes another. The run completes: the
    leftover goes with the rest of the scratch, not at some later worker start."""
    import skops.io as sio

    marker = tmp_path / "marker"
    marker.mkdir()

    def model_store(self, inp):
        run_dir = self.run_dir(inp)
        return slow_store.stalled_store(marker, run_dir / "model.skops", run_dir / TRUSTED_FILE)

    monkeypatch.setattr(RunData, "model_store", model_store)
    storage = Storage(settings.home)
    async with running_workers(client, settings):
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=300))
        request = TrainRequest(user.name, ds.dataset_id, "bought", "random_forest_classifier", {"n_estimators": 30})
        run_id = await service.start_training(user, request)
        await eventually(lambda: _async((marker / "storing").exists()), timeout=120)
        assert any(name.endswith(".tmp") for name in _files(storage, user, run_id))
        (marker / "killed").write_text("")
        os.kill(int((marker / "storing").read_text()), signal.SIGKILL)
        view = await finished_run(service, user, run_id, timeout=180)
    assert view.status == "completed", view.error
    assert next(s for s in view.stages if s.name == "fit").attempt == 2
    assert _files(storage, user, run_id) == {"evaluation.json"}
    record = service.registry.by_run(user.name, run_id)
    assert record is not None
    model_file = service.registry.model_file(record)
    assert record.skops_trusted == sorted(sio.get_untrusted_types(file=model_file))
    assert {p.name for p in service.registry.model_dir(record).iterdir()} == {"model.skops", "card.json"}
