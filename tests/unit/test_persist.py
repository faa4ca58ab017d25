"""ml.persist: skops model files; loading trusts only our own stack's types."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

import ml.persist
from ml.catalog import get_model
from ml.persist import UntrustedModelFile, load_model, save_model
from ml.training import make_pipeline


class Payload:
    """A type from outside the allow-list, as an attacker's file would carry."""

    def __init__(self) -> None:
        self.command = "echo owned"


def _frame(rows: int = 80, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=rows), "colour": rng.choice(["red", "green", "blue"], rows)})
    X.loc[::9, "x"] = np.nan
    y = pd.Series(np.where(X.x.fillna(0) > 0, "yes", "no"))
    return X, y


@pytest.fixture(autouse=True)
def from_disk():
    """Round trips must read the file back, not the in-process copy of the last saved models."""
    ml.persist._RECENT.clear()
    yield
    ml.persist._RECENT.clear()


def saved(pipeline, path):
    save_model(pipeline, path)
    ml.persist._RECENT.clear()


@pytest.fixture(scope="module")
def fitted():
    X, y = _frame()
    spec = get_model("random_forest_classifier")
    return make_pipeline(spec, {"n_estimators": 10}, 0, X).fit(X, y), X


def test_round_trip_gives_identical_predictions(fitted, tmp_path):
    pipeline, X = fitted
    saved(pipeline, tmp_path / "model.skops")
    loaded = load_model(tmp_path / "model.skops")
    assert (loaded.predict(X) == pipeline.predict(X)).all()
    assert np.array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))


def test_round_trip_of_a_scaled_linear_model(tmp_path):
    X, y = _frame()
    pipeline = make_pipeline(get_model("logistic_regression"), {}, 0, X).fit(X, y)
    saved(pipeline, tmp_path / "m.skops")
    assert np.array_equal(load_model(tmp_path / "m.skops").predict_proba(X), pipeline.predict_proba(X))


def test_save_creates_folders_and_leaves_no_temporary_file(fitted, tmp_path):
    save_model(fitted[0], tmp_path / "runs" / "r1" / "model.skops")
    assert [p.name for p in (tmp_path / "runs" / "r1").iterdir()] == ["model.skops"]


def test_file_with_an_untrusted_type_is_refused(tmp_path):
    path = tmp_path / "evil.skops"
    sio.dump({"model": Payload()}, path)
    with pytest.raises(UntrustedModelFile, match="Payload"):
        load_model(path)


def test_untrusted_type_hidden_inside_a_real_pipeline_is_refused(fitted, tmp_path):
    pipeline, _ = fitted
    path = tmp_path / "evil.skops"
    sio.dump({"pipeline": pipeline, "extra": [Payload()]}, path)
    with pytest.raises(UntrustedModelFile):
        load_model(path)


def test_untrusted_model_file_is_a_value_error():
    assert issubclass(UntrustedModelFile, ValueError)


def test_the_model_just_saved_is_served_from_memory_until_the_file_changes(fitted, tmp_path):
    pipeline, _ = fitted
    path = tmp_path / "model.skops"
    save_model(pipeline, path, remember=True)
    assert load_model(path) is pipeline          # the next stage on this worker skips the read
    sio.dump(pipeline, path)                     # rewritten elsewhere (another worker's retry)
    assert load_model(path) is not pipeline
    save_model(pipeline, tmp_path / "checkpoint.skops")   # not remembered: a fit goes on changing it
    assert load_model(tmp_path / "checkpoint.skops") is not pipeline
