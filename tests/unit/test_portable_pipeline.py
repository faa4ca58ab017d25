"""ml.training.make_pipeline: built from scikit-learn, numpy and pandas parts alone, it takes the raw
columns a user uploads and predicts as the earlier pipeline with TrainEasy's own column step did."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from ml.catalog import MODELS
from ml.persist import LIBRARIES, types_in
from ml.training import make_pipeline, prepare
from tests.unit.legacy_models import legacy_pipeline, write_legacy_models


@pytest.fixture(autouse=True)
def one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits
        yield


def as_stored(df: pd.DataFrame) -> pd.DataFrame:
    """The frame as training reads it: through Parquet (a boolean column with gaps comes back with None)."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return pd.read_parquet(io.BytesIO(buf.getvalue()))


def as_uploaded(X: pd.DataFrame) -> pd.DataFrame:
    """The same rows as a user sends them for prediction: a CSV read by pandas (gaps are NaN)."""
    return pd.read_csv(io.StringIO(X.to_csv(index=False)))


def houses(rows: int = 90, seed: int = 7) -> pd.DataFrame:
    """Numbers, integers, text with gaps, booleans with and without gaps, a date column, two targets."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "size": rng.normal(10, 3, rows).round(2),
            "rooms": rng.integers(1, 6, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "garden": rng.choice([True, False], rows),
            "garage": rng.choice(np.array([True, False, None], dtype=object), rows),
            "listed": pd.date_range("2023-01-01", periods=rows, freq="5D").strftime("%Y-%m-%d"),
        }
    )
    df.loc[::7, "size"] = np.nan
    df.loc[::5, "colour"] = None
    df["price"] = (20 * df["size"].fillna(10) + 15 * df.rooms + 30 * (df.colour == "red") + rng.normal(0, 5, rows)).round(1)
    df["kind"] = rng.choice(["flat", "house", "villa"], rows)
    return as_stored(df)


def _fitted(key: str, build=make_pipeline):
    spec = MODELS[key]
    target, other = ("price", "kind") if spec.task == "regression" else ("kind", "price")
    prep = prepare(houses().drop(columns=[other]), target, spec)
    return build(spec, {}, 0, prep.X).fit(prep.X, prep.y), prep


@pytest.mark.parametrize("key", list(MODELS))
def test_the_pipeline_predicts_as_the_one_with_traineasys_own_column_step(key):
    """Same features in the same order (to the last bit or two of rounding), so a model retrained today
    gives the predictions the earlier pipeline gave."""
    new, prep = _fitted(key)
    old, _ = _fitted(key, legacy_pipeline)
    rows = as_uploaded(prep.X)
    features, before = new[:-1].transform(rows), old[:-1].transform(rows)
    if MODELS[key].handles_missing:  # since then, a model that takes missing numbers gets them as they are
        gaps = np.isnan(features)
        assert gaps[:, 0].sum() == rows["size"].isna().sum() and gaps.any(axis=0).sum() == 1  # size, not imputed
        np.testing.assert_allclose(features[~gaps], before[~gaps], rtol=0, atol=1e-12)
        return  # a different model where numbers are missing, by design: tests/unit/test_evaluation.py
    np.testing.assert_allclose(features, before, rtol=0, atol=1e-12)
    if MODELS[key].task == "regression":
        np.testing.assert_allclose(new.predict(rows), old.predict(rows), rtol=1e-9, atol=1e-9)
    else:
        assert new.predict(rows).tolist() == old.predict(rows).tolist()
        if hasattr(new, "predict_proba"):
            np.testing.assert_allclose(new.predict_proba(rows), old.predict_proba(rows), rtol=0, atol=1e-9)


@pytest.mark.parametrize("key", ["random_forest_classifier", "ridge", "mlp_classifier"])
def test_the_saved_file_names_library_types_alone(key):
    pipeline, _ = _fitted(key)
    used = types_in(sio.dumps(pipeline))
    assert used and all(t.startswith(LIBRARIES) for t in used), sorted(t for t in used if not t.startswith(LIBRARIES))


def test_the_pipeline_takes_the_raw_columns_and_expands_the_date_itself():
    pipeline, prep = _fitted("linear_regression")
    assert list(pipeline.feature_names_in_) == ["size", "rooms", "colour", "garden", "garage", "listed"]
    block = pipeline.named_steps["preprocess"].named_transformers_["date_0"]
    parts = block[:-2].transform(pd.Series(["2024-03-31T01:30:00+01:00", "07/04/2024", "not a date"]))
    assert parts[0].tolist() == [2024, 3, 31, 6]  # year, month, day, weekday (Sunday), in UTC
    assert parts[1][:2].tolist() == [2024, 7] and np.isnan(parts[2]).all()


def test_any_column_name_works_double_underscores_too():
    X = houses().rename(columns={"listed": "listed__on", "colour": "colour__x"})
    prep = prepare(X.drop(columns=["kind"]), "price", MODELS["ridge"])
    pipeline = make_pipeline(MODELS["ridge"], {}, 0, prep.X).fit(prep.X, prep.y)
    assert pipeline.predict(as_uploaded(prep.X)).shape == (len(prep.X),)


def test_rows_from_a_csv_predict_as_the_training_rows_from_parquet():
    """Parquet gives None for a gap in a boolean column, a CSV gives NaN: both are the same gap."""
    X = houses()
    assert X["garage"].dtype == object and X["garage"].map(lambda v: v is None).any()
    pipeline, prep = _fitted("logistic_regression")
    assert not prep.X["garage"].map(lambda v: v is None).any()
    stored, uploaded = prep.X, as_uploaded(prep.X)
    assert uploaded["garage"].isna().sum() == stored["garage"].isna().sum() > 0
    np.testing.assert_array_equal(pipeline.predict_proba(stored), pipeline.predict_proba(uploaded))


def test_a_model_saved_before_still_predicts_through_the_predict_activity(tmp_path):
    """A registry holding a file from before (TrainEasy's own column step): the worker's predict path
    loads it and writes the predictions it made when it was saved (tests/unit/legacy_models.py)."""
    from temporalio.testing import ActivityEnvironment

    from core.names import new_run_id
    from core.registry import Registry
    from core.storage import Storage
    from ml.schema import input_schema
    from orchestration.contracts import PredictRequest
    from orchestration.data_activities import DataActivities

    data = tmp_path / "legacy"
    data.mkdir()
    expected = write_legacy_models(data)
    storage = Storage(tmp_path)
    rows = pd.read_csv(io.StringIO(expected["input_csv"]))
    card = {"task": "classification", "input_schema": input_schema(rows)}
    record = Registry(storage).register(
        "alice", "random_forest_classifier", new_run_id("train", "alice"), data / "legacy_classification.skops", card
    )
    staged = storage.upload_dir("alice") / "0123456789abcdef0123456789abcdef.csv"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text(expected["input_csv"])
    out = ActivityEnvironment().run(
        DataActivities(storage).predict, PredictRequest("alice", record.id, staged.name, "new.csv", 2**20)
    )
    written = pd.read_csv(storage.user_dir("alice") / "predictions" / out.file)
    assert written["prediction"].tolist() == expected["classification"]["predictions"]
    np.testing.assert_allclose(
        written[["probability_no", "probability_yes"]], expected["classification"]["probabilities"], atol=1e-6
    )
