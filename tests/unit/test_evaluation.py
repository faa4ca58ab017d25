"""ml.evaluation's fast paths give the figures of the plain scikit-learn calls: metrics and permutation importance
computed on class positions equal those on the labels, predictions read from the probabilities equal predict(),
and a model that takes missing numbers itself gets them as they are (no imputer), as a plain fit on the raw
columns would."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as m
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance

from ml.catalog import MODELS, get_model
from ml.evaluation import (
    ARGMAX_PREDICT,
    IMPORTANCE_REPEATS,
    class_codes,
    evaluate,
    feature_importance,
    importance_scoring,
    metrics_for,
    predictions,
)
from ml.guardrails import assess_data
from ml.training import make_pipeline, prepare


def frame(rows: int, classes: list[str], seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(4)})
    X["city"] = rng.choice(["paris", "oslo", "rome"], size=rows)
    score = (X["x0"] + 0.5 * X["x1"]).to_numpy() + rng.normal(scale=0.7, size=rows)
    cuts = np.quantile(score, np.linspace(0, 1, len(classes) + 1)[1:-1])
    y = pd.Series(np.asarray(classes)[np.digitize(score, cuts)])
    return X, y


def reference_metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, classes: list) -> dict[str, float]:
    """The metrics as scikit-learn gives them on the labels themselves."""
    out = {
        "accuracy": m.accuracy_score(y, pred),
        "balanced_accuracy": m.balanced_accuracy_score(y, pred),
        "f1_macro": m.f1_score(y, pred, average="macro"),
        "log_loss": m.log_loss(y, proba, labels=classes),
    }
    if len(classes) == 2:
        out["roc_auc"] = m.roc_auc_score(y, proba[:, 1])
    else:
        out["roc_auc"] = m.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    return out


@pytest.mark.parametrize("classes", [["no", "yes"], ["b", "c", "a"], [3, 1, 2]])
def test_metrics_and_charts_on_class_positions_equal_those_on_the_labels(classes):
    X, y = frame(600, classes)
    spec = get_model("logistic_regression")
    pipeline = make_pipeline(spec, {}, 0, X[:400]).fit(X[:400], y[:400])
    Xt, yt = X[400:], y[400:]
    metrics, charts = evaluate(pipeline, "classification", Xt, yt)
    pred, proba = pipeline.predict(Xt), pipeline.predict_proba(Xt)
    labels = list(pipeline[-1].classes_)
    expected = reference_metrics(np.asarray(yt), pred, proba, labels)
    assert metrics.keys() == expected.keys()
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, abs=1e-12), name
    assert charts["labels"] == [str(c) for c in labels]
    assert charts["confusion"] == m.confusion_matrix(yt, pred, labels=labels).tolist()
    shown = [1] if len(labels) == 2 else range(len(labels))
    for curve, k in zip(charts["roc"], shown, strict=True):
        fpr, tpr, _ = m.roc_curve(np.asarray(yt) == labels[k], proba[:, k])
        assert curve["label"] == str(labels[k])
        assert curve["auc"] == pytest.approx(m.auc(fpr, tpr), abs=1e-12)


def test_a_label_the_model_never_saw_falls_back_to_the_labels():
    classes = ["a", "b"]
    y = np.array(["a", "b", "c", "a"], dtype=object)  # "c" is not a class of the model
    pred = np.array(["a", "b", "b", "a"], dtype=object)
    assert class_codes(classes, y, pred) is None
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    metrics = metrics_for("classification", y, pred, proba, classes)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["balanced_accuracy"] == pytest.approx(m.balanced_accuracy_score(y, pred))
    assert "log_loss" not in metrics  # undefined with a class unseen in training, as before


ARGMAX_MODELS = [k for k, spec in MODELS.items() if spec.estimator.rpartition(".")[2] in ARGMAX_PREDICT]


def test_every_model_read_from_its_probabilities_is_in_the_catalog():
    assert len(ARGMAX_MODELS) == len(ARGMAX_PREDICT), ARGMAX_MODELS  # a renamed class would silently lose its fast path


@pytest.mark.parametrize("key", ARGMAX_MODELS)
def test_predictions_read_from_the_probabilities_equal_predict(key):
    X, y = frame(500, ["low", "mid", "high"], seed=3)
    spec = get_model(key)
    small = {spec.increments: 20} if spec.increments else {}
    pipeline = make_pipeline(spec, small, 0, X[:350]).fit(X[:350], y[:350])
    pred, proba = predictions(pipeline, X[350:])
    np.testing.assert_array_equal(pred, pipeline.predict(X[350:]))
    np.testing.assert_array_equal(proba, pipeline.predict_proba(X[350:]))


def test_hist_gradient_boosting_takes_missing_numbers_itself():
    """No median imputer before it: its pipeline predicts as a plain fit on the raw numbers, NaN included."""
    X, y = frame(800, ["no", "yes"], seed=5)
    X.loc[X.index[::7], "x0"] = np.nan
    spec = get_model("hist_gradient_boosting_classifier")
    numbers = ["x0", "x1", "x2", "x3"]
    pipeline = make_pipeline(spec, {"max_iter": 30}, 0, X[numbers]).fit(X[numbers], y)
    assert dict((name, step) for name, step, _ in pipeline.named_steps["preprocess"].transformers)["numeric"] == "passthrough"
    plain = HistGradientBoostingClassifier(max_iter=30, early_stopping=False, random_state=0).fit(X[numbers], y)
    np.testing.assert_allclose(pipeline.predict_proba(X[numbers]), plain.predict_proba(X[numbers]), rtol=0, atol=1e-12)
    # the data check says where those missing numbers go, and still that text is filled in
    X.loc[X.index[::9], "city"] = np.nan
    df = X.assign(label=y)
    words = [f.message for f in assess_data(df, "label", spec).findings if "missing" in f.message]
    assert any("x0" in w and "left to the model" in w for w in words), words
    assert any("city" in w and "imputed" in w for w in words), words
    assert prepare(df, "label", spec).X["x0"].isna().sum() == len(X.index[::7])


def test_models_that_need_it_still_impute_missing_numbers():
    X, y = frame(300, ["no", "yes"], seed=6)
    X.loc[X.index[::5], "x1"] = np.nan
    pipeline = make_pipeline(get_model("random_forest_classifier"), {"n_estimators": 5}, 0, X).fit(X, y)
    numbers = pipeline.named_steps["preprocess"].named_transformers_["numeric"]
    assert numbers.named_steps["impute"].strategy == "median"
    assert not np.isnan(numbers.transform(X[["x0", "x1", "x2", "x3"]])).any()


@pytest.mark.parametrize(
    "labels",
    [["no", "yes"], ["b", "c", "a", "b"], [3, 1, 2, 2], [0.5, 2.5, 1.5], [True, False]],
)
def test_the_split_on_sorted_codes_equals_the_split_on_the_labels(labels):
    """ml.training.split stratifies on the labels' sorted positions: the same rows as scikit-learn's split on
    the labels themselves (which sorts a million text labels for seconds)."""
    from sklearn.model_selection import train_test_split

    from ml.training import Prepared, sorted_codes, split

    rng = np.random.default_rng(1)
    y = pd.Series(np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[rng.integers(0, len(labels), 500)])
    if isinstance(labels[0], str):
        y = y.astype("str")  # as pandas reads text from a CSV or Parquet file
    assert sorted_codes(y).dtype.kind == "i"  # the fast path was taken
    prep = Prepared(pd.DataFrame({"x": np.arange(500)}), y, 0, int(y.nunique()))
    train, test = split(prep, 0.2, 7, stratify=True)
    plain_train, plain_test = train_test_split(np.arange(500), test_size=0.2, random_state=7, stratify=y)
    np.testing.assert_array_equal(train, np.sort(plain_train))
    np.testing.assert_array_equal(test, np.sort(plain_test))


@pytest.mark.parametrize("classes", [["no", "yes"], ["b", "c", "a"], [3, 1, 2]])
@pytest.mark.parametrize("key", ["hist_gradient_boosting_classifier", "logistic_regression"])
def test_permutation_importance_on_class_positions_equals_scikit_learns_on_the_labels(classes, key):
    X, y = frame(500, classes, seed=1)
    spec = get_model(key)
    small = {spec.increments: 20} if spec.increments else {}
    pipeline = make_pipeline(spec, small, 0, X[:350]).fit(X[:350], y[:350])
    Xt, yt = X[350:], y[350:]
    scoring, target = importance_scoring(pipeline, yt)
    assert scoring is not None  # the fast path is taken
    expected = permutation_importance(pipeline, Xt, yt, n_repeats=IMPORTANCE_REPEATS, random_state=7, n_jobs=1)
    ranked = sorted(zip(Xt.columns, expected.importances_mean, expected.importances_std), key=lambda t: -t[1])
    assert feature_importance(pipeline, Xt, yt, 7) == [
        {"feature": f, "importance": float(mu), "std": float(sd)} for f, mu, sd in ranked
    ]


def test_a_label_the_model_never_saw_is_scored_by_the_models_own_score():
    X, y = frame(300, ["a", "b"], seed=2)
    pipeline = make_pipeline(get_model("logistic_regression"), {}, 0, X[:200]).fit(X[:200], y[:200])
    held = y[200:].copy()
    held.iloc[0] = "c"  # not a class of the model
    scoring, target = importance_scoring(pipeline, held)
    assert scoring is None and target is held
    expected = permutation_importance(pipeline, X[200:], held, n_repeats=IMPORTANCE_REPEATS, random_state=7, n_jobs=1)
    got = {row["feature"]: row["importance"] for row in feature_importance(pipeline, X[200:], held, 7)}
    assert got == dict(zip(X.columns, map(float, expected.importances_mean), strict=True))


def test_a_regressor_is_scored_by_its_own_score():
    X, y = frame(200, ["a", "b"])
    target = X["x0"] * 2.0
    pipeline = make_pipeline(get_model("linear_regression"), {}, 0, X).fit(X, target)
    assert importance_scoring(pipeline, target)[0] is None
