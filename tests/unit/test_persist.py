"""ml.persist: skops model files; loading trusts only our own stack's types."""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

import ml.persist
from ml.catalog import get_model
from ml.persist import UntrustedModelFile, load_model, save_model, write_model
from ml.training import make_pipeline
from tests.unit.legacy_models import write_legacy_models


class Payload:
    """A type from outside the allow-list, as an attacker's file would carry."""

    def __init__(self) -> None:
        self.command = "echo owned"


def model_bytes(pipeline) -> bytes:
    """A model file's bytes, written as save_model writes them (write_model), in memory."""
    buffer = io.BytesIO()
    write_model(pipeline, buffer)
    return buffer.getvalue()


def _frame(rows: int = 80, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=rows), "colour": rng.choice(["red", "green", "blue"], rows)})
    X.loc[::9, "x"] = np.nan
    y = pd.Series(np.where(X.x.fillna(0) > 0, "yes", "no"))
    return X, y


def saved(pipeline, path):
    save_model(pipeline, path)


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


def _catalog_frames(task: str, classes: int, rows: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric, integer, categorical (with gaps), boolean and date columns: every path of the pipeline."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "count": rng.integers(0, 9, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "flag": rng.choice([True, False], rows),
            "day": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
        }
    )
    X.loc[::7, "x"] = np.nan
    X.loc[::5, "colour"] = None
    if task == "regression":
        return X, pd.Series(2 * X.x.fillna(0) + rng.normal(size=rows))
    return X, pd.Series(rng.choice(["a", "b", "c"][:classes], rows))


def _catalog_types(tmp_path) -> set[str]:
    from ml.catalog import MODELS
    from ml.persist import skops_trusted, types_in

    found: set[str] = set()
    for key, spec in MODELS.items():
        variants: list[tuple[int, dict[str, Any]]] = [(2, {}), (3, {})] if spec.task == "classification" else [(0, {})]
        for classes, params in variants:
            X, y = _catalog_frames(spec.task, classes)
            pipeline = make_pipeline(spec, params, 0, X).fit(X, y)
            path = tmp_path / f"{key}-{classes}.skops"
            sio.dump(pipeline, path)
            found |= types_in(path.read_bytes())
            assert set(sio.get_untrusted_types(file=path)) <= found  # ours is never wider than skops' own check
            assert skops_trusted(path.read_bytes()) == sio.get_untrusted_types(file=path)  # read without the arrays
    return found


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_trusted_types_are_exactly_what_the_catalog_pipelines_use(tmp_path):
    found = _catalog_types(tmp_path)
    assert found - ml.persist.TRUSTED_TYPES == set(), "add these to ml.persist.TRUSTED_TYPES (after a look)"
    assert ml.persist.TRUSTED_TYPES - found == set(), "no catalog model uses these any more: remove them"


def test_saved_pipelines_are_made_of_library_types_alone():
    """Nothing of TrainEasy's own in a file it writes now: it loads wherever the libraries are installed."""
    assert all(t.startswith(ml.persist.LIBRARIES) for t in ml.persist.TRUSTED_TYPES)
    assert not {t for t in ml.persist.TRUSTED_TYPES if t.split(".")[0] in {"ml", "core", "orchestration", "ui"}}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_skops_trusted_names_what_a_plain_skops_load_needs(tmp_path):
    """The list the model card carries for `skops.io.load(..., trusted=...)`: exactly what skops does not
    trust by default, all from the libraries, and enough for a load with skops' own check."""
    from ml.catalog import MODELS
    from ml.persist import skops_trusted

    for key in ("mlp_classifier", "hist_gradient_boosting_regressor"):
        spec = MODELS[key]
        X, y = _catalog_frames(spec.task, 3)
        path = tmp_path / f"{key}.skops"
        save_model(make_pipeline(spec, {}, 0, X).fit(X, y), path)
        trusted = skops_trusted(path.read_bytes())
        assert trusted and "pandas.to_datetime" in trusted and all(t.startswith(ml.persist.LIBRARIES) for t in trusted)
        assert sio.load(path, trusted=trusted).predict(X).shape == (len(X),)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_model_saved_before_pipelines_were_library_only_still_loads_and_predicts(task, tmp_path):
    """Files in users' registries from before name TrainEasy's own column step (`ml.training.
    normalise_columns`): they still load here, through the trust check, and predict as they did when saved
    (tests/unit/legacy_models.py builds them as the code did then)."""
    expected = write_legacy_models(tmp_path)
    path = tmp_path / f"legacy_{task}.skops"
    assert "ml.training.normalise_columns" in ml.persist.types_in(path.read_bytes())
    assert ml.persist.skops_trusted(path.read_bytes()) is None  # it needs TrainEasy: the page says so instead of a snippet
    pipeline = load_model(path)
    X = pd.read_csv(io.StringIO(expected["input_csv"]))
    assert pipeline.predict(X).tolist() == expected[task]["predictions"]
    if task == "classification":
        assert np.array_equal(pipeline.predict_proba(X), np.array(expected[task]["probabilities"]))


@pytest.mark.parametrize("extra", ["pca", "kmeans"])
def test_a_library_class_outside_the_list_is_refused(tmp_path, extra):
    """skops trusts every scikit-learn estimator by default; we trust only the catalog's."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    X, y = _frame()
    pipeline = make_pipeline(get_model("logistic_regression"), {}, 0, X)
    step = PCA(n_components=2) if extra == "pca" else KMeans(n_clusters=2, n_init=1, random_state=0)
    pipeline.steps.insert(len(pipeline.steps) - 1, ("extra", step))  # before the model
    pipeline.fit(X, y)
    saved(pipeline, tmp_path / "other.skops")
    with pytest.raises(UntrustedModelFile, match="sklearn"):
        load_model(tmp_path / "other.skops")


def test_a_numpy_function_is_refused(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "fn.skops"
    sio.dump(FunctionTransformer(np.log1p), path)
    with pytest.raises(UntrustedModelFile, match="log1p"):
        load_model(path)


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    path = tmp_path / "junk.skops"
    path.write_bytes(b"not a zip file")
    with pytest.raises(UntrustedModelFile):
        load_model(path)


def test_saved_model_is_private_whatever_the_umask(fitted, tmp_path):
    old = os.umask(0o022)
    try:
        save_model(fitted[0], tmp_path / "m" / "model.skops")
    finally:
        os.umask(old)
    assert (tmp_path / "m" / "model.skops").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o700


def _renumbered(zf) -> tuple[object, list[bytes]]:
    """A skops file's schema and members with the object ids skops names them by (ids differ per call) renumbered
    in order of appearance."""
    seen: dict[str, str] = {}

    def walk(node: object) -> object:
        if isinstance(node, dict):
            return {k: seen.setdefault(str(v), f"#{len(seen)}") if k in ("__id__", "file") else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    names = [n for n in zf.namelist() if n != "schema.json"]
    return walk(json.loads(zf.read("schema.json"))), [zf.read(n) for n in names]


@pytest.mark.parametrize("model", ["logistic_regression", "random_forest_classifier", "hist_gradient_boosting_classifier"])
def test_a_saved_file_holds_what_skops_own_dumps_writes(model, tmp_path):
    """save_model writes schema.json compact (skops indents it, at most of a save's cost): the same schema and
    members as skops' own dumps, and it loads with skops alone."""
    from zipfile import ZipFile

    X, y = _frame()
    pipeline = make_pipeline(get_model(model), {"n_estimators": 5} if "forest" in model else {}, 0, X).fit(X, y)
    path = tmp_path / "model.skops"
    save_model(pipeline, path)  # streamed into the file
    data = path.read_bytes()
    assert _renumbered(ZipFile(path)) == _renumbered(ZipFile(io.BytesIO(model_bytes(pipeline))))
    assert ml.persist.skops_trusted(path) == ml.persist.skops_trusted(data) == sio.get_untrusted_types(file=path)
    ours, theirs = ZipFile(io.BytesIO(data)), ZipFile(io.BytesIO(sio.dumps(pipeline)))
    assert _renumbered(ours) == _renumbered(theirs)
    assert b"\n" not in ours.read("schema.json")  # compact: the C encoder's output
    loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert np.array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))


def test_a_file_missing_an_array_the_schema_names_is_refused_before_its_types_are_trusted(fitted):
    """The audit reads no array's bytes (ml.persist._Unread), but an array the schema names must be there."""
    from ml.persist import load_model_bytes, types_in

    data = model_bytes(fitted[0])
    with zipfile.ZipFile(io.BytesIO(data)) as whole:
        members = {name: whole.read(name) for name in whole.namelist()}
    dropped = next(name for name in members if name.endswith(".npy"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as cut:
        for name, content in members.items():
            if name != dropped:
                cut.writestr(name, content)
    assert types_in(data) <= ml.persist.TRUSTED_TYPES  # the whole file audits
    with pytest.raises(UntrustedModelFile, match="not a readable model file"):
        load_model_bytes(buffer.getvalue())


def test_a_file_with_a_corrupt_array_is_refused_as_unreadable(fitted):
    """The audit reads no array's bytes (ml.persist._Unread): the load reads them, and a corrupt one (its CRC
    does not match) makes the file unreadable there, as it did when the audit read them."""
    from ml.persist import load_model_bytes

    data = model_bytes(fitted[0])  # stored, not compressed: an array's bytes are in the file as they are
    with zipfile.ZipFile(io.BytesIO(data)) as whole:
        array = max((whole.read(name) for name in whole.namelist() if name.endswith(".npy")), key=len)
    at = data.index(array) + len(array) - 1
    corrupt = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    with pytest.raises(UntrustedModelFile, match="not a readable model file"):
        load_model_bytes(corrupt)
