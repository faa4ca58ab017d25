"""Model registry round trip through Temporal: train, register, download, predict in a worker, delete."""

from __future__ import annotations

import io
import uuid

import pandas as pd
import pytest

from core.accounts import User
from ml.persist import load_model
from orchestration.contracts import TrainRequest
from orchestration.errors import NotFound, UserError
from tests.helpers import classification_csv, finished_run, running_workers


async def _train(service, user, dataset_id, model="logistic_regression"):
    run_id = await service.start_training(user, TrainRequest(user.name, dataset_id, "bought", model))
    view = await finished_run(service, user, run_id)
    assert view.status == "completed", view.error
    return view


async def test_registry_round_trip_and_prediction(client, settings, service, tmp_path):
    tag = uuid.uuid4().hex[:6]
    alice, bob = User(f"reg_a_{tag}"), User(f"reg_b_{tag}")
    async with running_workers(client, settings):
        ds = await service.upload_dataset(alice, "shop.csv", classification_csv(rows=150))
        first = await _train(service, alice, ds.dataset_id)
        second = await _train(service, alice, ds.dataset_id)
        models = service.list_models(alice)
        assert [m.version for m in models] == [2, 1]
        model = models[0]
        assert model.run_id == second.run_id and model.card["metrics"] == second.metrics
        card = model.card
        assert card["dataset"]["sha256"] and card["versions"]["scikit-learn"]
        assert [c["name"] for c in card["input_schema"]] == ["age", "income", "city"]
        assert card["cpu_seconds"] >= 0 and card["peak_rss_mb"] > 0 and card["owner"] == alice.name

        # download: the model file loads (safely) and the card is JSON
        blob, card_json = service.model_download(alice, model.id)
        path = tmp_path / "m.skops"
        path.write_bytes(blob)
        assert hasattr(load_model(path), "predict")
        assert b'"input_schema"' in card_json

        # predict in a worker: extra column ignored, unseen category reported, probabilities returned
        new = "age,income,city,comment\n30,70.5,paris,+cmd\n61,20.0,berlin,=1+1\n45,,nice,\n"
        result = await service.predict(alice, model.id, "new.csv", new.encode())
        assert result.rows == 3
        # the preview is read from the predictions file (the rows never travel through Temporal)
        assert [row["income"] for row in result.preview] == [70.5, 20.0, None]
        # the true values on screen; only the downloaded file is formula-safe
        assert [row["comment"] for row in result.preview] == ["+cmd", "=1+1", None]
        assert b"'=1+1" in service.prediction_file(alice, result.file)
        assert {"prediction", "probability_yes", "comment"} <= set(result.preview[0])
        assert any("comment" in n for n in result.notes)
        assert any("berlin" in n for n in result.notes)
        out = pd.read_csv(io.BytesIO(service.prediction_file(alice, result.file)))
        assert set(out["prediction"]) <= {"yes", "no"}
        assert {"probability_yes", "probability_no"} <= set(out.columns)

        # a file lacking a needed column is refused, naming it
        with pytest.raises(UserError, match="city"):
            await service.predict(alice, model.id, "bad.csv", b"age,income\n1,2\n")
        # another user's model is not found, for every operation
        for call in (
            lambda: service.get_model(bob, model.id),
            lambda: service.model_download(bob, model.id),
            lambda: service.delete_model(bob, model.id),
        ):
            with pytest.raises(NotFound):
                call()
        with pytest.raises(NotFound):
            await service.predict(bob, model.id, "new.csv", new.encode())
        with pytest.raises(NotFound):
            service.prediction_file(bob, result.file)
        with pytest.raises(NotFound):
            service.prediction_file(alice, "../../auth/credentials.json")

    # delete removes files and record together and says what it reclaimed
    folder = service.registry.model_dir(model)
    reclaimed = service.delete_model(alice, model.id)
    assert reclaimed > 0 and not folder.exists()
    assert [m.version for m in service.list_models(alice)] == [1]
    # retention: keeping the last 1 version per dataset, target and model leaves the last one alone
    assert first.facts.model_version == 1
    plan = service.retention_preview(alice, 1)
    assert plan.delete == ()
    assert service.apply_retention(alice, 1, plan.ids).deleted == ()
    assert [m.version for m in service.list_models(alice)] == [1]
    with pytest.raises(UserError):
        service.retention_preview(alice, 0)


async def test_predictions_are_bounded_by_the_storage_the_user_has_left(client, settings, service):
    """The hostile case: a many-class model turns a small one-column file into a file ~50x larger (a
    probability column per class). The service passes the storage left; the worker refuses before writing."""
    import numpy as np

    user = User(f"reg_q_{uuid.uuid4().hex[:6]}")
    service.quotas.set_override(user.name, max_stored_mb=1)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 60, 600)
    train = pd.DataFrame({"x": (labels + rng.normal(0, 0.3, 600)).round(3), "c": [f"k{v}" for v in labels]})
    async with running_workers(client, settings):
        ds = await service.upload_dataset(user, "classes.csv", train.to_csv(index=False).encode())
        run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "c", "gaussian_nb"))
        view = await finished_run(service, user, run_id)
        assert view.status == "completed", view.error
        new = pd.DataFrame({"x": rng.uniform(0, 60, 20_000).round(3)}).to_csv(index=False).encode()  # ~140 KB
        left = 2**20 - service.quotas.stored_bytes(user.name)
        assert len(new) < left, "the input itself fits in the quota"
        (model,) = service.list_models(user)
        with pytest.raises(UserError, match=r"would be about \d+\.\d MB, but only \d+\.\d KB of your storage quota"):
            await service.predict(user, model.id, "new.csv", new)
        predictions = service.storage.user_dir(user.name) / "predictions"
        assert not predictions.exists() or not any(predictions.iterdir())
        assert service.quotas.stored_bytes(user.name) < 2**20
