"""ml.fitting, ml.fit_progress and ml.curves: a fit's live progress from the estimator's own output, and its
learning curve from its stages after the fit, each point the score a model of that size gets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, r2_score

from ml.catalog import MODELS, get_model
from ml.curves import score_sample, sizes
from ml.fit_progress import FitProgress
from ml.fitting import Growth, fit, live_probe, reference_fit
from ml.training import make_pipeline
from tests.unit.test_training import classification, regression, train_rows

STAGED = [k for k, m in MODELS.items() if m.increments]


@pytest.fixture(autouse=True)
def one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _data(spec, rows: int = 120):
    df, target = (classification(rows), "bought") if spec.task == "classification" else (regression(rows), "spend")
    return train_rows(df, target, spec)


class Recorded(FitProgress):
    """Progress that keeps every step it was told, in order."""

    seen: list[int]

    def __init__(self) -> None:
        object.__setattr__(self, "seen", [])
        super().__init__()

    def __setattr__(self, name, value):
        if name == "step":
            self.seen.append(value)
        super().__setattr__(name, value)


@pytest.mark.parametrize("key", STAGED)
def test_progress_follows_each_tree_or_iteration_of_the_one_fit_call(key):
    spec = MODELS[key]
    X, y, _, _ = _data(spec)
    progress = Recorded()
    fit(make_pipeline(spec, {spec.increments: 30}, 0, X), spec, X, y, progress=progress)
    assert progress.of == 30
    assert progress.unit == ("tree" if spec.family == "forest" else "iteration")
    assert progress.seen == sorted(progress.seen) and progress.seen[-1] == 30
    assert len({s for s in progress.seen if 0 < s < 30}) >= 20, progress.seen  # stage by stage, not only at the end


def test_a_forest_grown_in_parts_counts_its_trees_across_the_parts():
    X, y, _, _ = _data(get_model("extra_trees_classifier"))
    spec = get_model("extra_trees_classifier")
    progress = Recorded()
    fit(make_pipeline(spec, {"n_estimators": 30}, 0, X), spec, X, y, progress=progress, growth=Growth(0.0, lambda p, t: None))
    assert progress.seen == sorted(progress.seen) and progress.seen[-1] == 30
    assert set(range(30)) <= set(progress.seen)


def test_a_short_forest_fit_saves_no_checkpoint():
    """A fit that will not outlast the checkpoint interval ends in one call after its timing tree."""
    X, y, X_test, _ = _data(get_model("random_forest_classifier"))
    spec = get_model("random_forest_classifier")
    saved: list[int] = []
    growth = Growth(3600.0, lambda p, t: saved.append(t))
    grown, _ = fit(make_pipeline(spec, {"n_estimators": 30}, 0, X), spec, X, y, growth=growth)
    assert saved == [] and len(grown[-1].estimators_) == 30


def test_a_model_without_stages_reports_none_and_has_no_curve():
    spec = get_model("logistic_regression")
    X, y, X_test, y_test = _data(spec)
    progress = Recorded()
    _, curve = fit(make_pipeline(spec, {}, 0, X), spec, X, y, valid=(X_test, y_test), progress=progress)
    assert progress.of == 0 and curve.steps == [] and curve.metric == "accuracy"


def test_the_progress_a_child_reports_is_the_trees_done_or_the_mlp_loss():
    spec = get_model("random_forest_classifier")
    X, _, _, _ = _data(spec)
    pipeline = make_pipeline(spec, {}, 0, X)
    assert live_probe(pipeline, FitProgress(step=3, of=100, unit="tree")) == {"step": 3, "of": 100, "unit": "tree"}
    assert live_probe(pipeline, FitProgress()) == {}
    mlp = make_pipeline(get_model("mlp_classifier"), {"max_iter": 300}, 0, X)
    mlp[-1].loss_curve_ = [0.9, 0.5]  # what an MLP's fit has appended after two epochs
    assert live_probe(mlp, FitProgress()) == {"step": 2, "of": 300, "loss": [0.9, 0.5], "unit": "epoch"}


@pytest.mark.parametrize("key", STAGED)
def test_each_curve_point_is_the_score_of_a_model_of_that_size(key):
    """The curve comes from the fitted model's stages; its point at k trees or iterations is what a plain fit
    of k gives on the same rows: a sample of the training rows (all of these few) and the held-out rows."""
    spec = MODELS[key]
    X, y, X_test, y_test = _data(spec, rows=200)
    _, curve = fit(make_pipeline(spec, {spec.increments: 20}, 4, X), spec, X, y, valid=(X_test, y_test))
    assert curve.steps == sizes(20) == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert curve.metric == ("accuracy" if spec.task == "classification" else "R²")
    score = accuracy_score if spec.task == "classification" else r2_score
    for k, train, valid in list(zip(curve.steps, curve.train, curve.valid))[::3]:
        alone = reference_fit(spec, {spec.increments: k}, 4, X, y)
        assert train == pytest.approx(score(y, alone.predict(X)), abs=1e-12)
        assert valid == pytest.approx(score(y_test, alone.predict(X_test)), abs=1e-12)


def test_the_curve_scores_a_sample_of_the_training_rows(monkeypatch):
    import ml.curves as curves

    monkeypatch.setattr(curves, "CURVE_SCORE_ROWS", 10)
    spec = get_model("hist_gradient_boosting_classifier")
    X, y, X_test, y_test = _data(spec)
    fitted, curve = fit(make_pipeline(spec, {"max_iter": 10}, 0, X), spec, X, y, valid=(X_test, y_test))
    train, valid = score_sample(len(y)), score_sample(len(y_test))
    assert len(train) == len(valid) == 10 and curve.rows == [10, 10]  # what the run page's caption says
    assert curve.train[-1] == accuracy_score(y.iloc[train], fitted.predict(X.iloc[train]))
    assert curve.valid[-1] == accuracy_score(y_test.iloc[valid], fitted.predict(X_test.iloc[valid]))


def test_the_curve_of_a_file_sorted_by_its_target_scores_every_part_of_it(monkeypatch):
    """Rows come in file order, and a file sorted by its target (or by date) must not have its curve scored on
    its first rows alone. Here the held-out rows' first half is labelled as the model predicts and their second
    half against it: the first rows would say the model is always right."""
    import ml.curves as curves

    monkeypatch.setattr(curves, "CURVE_SCORE_ROWS", 10)
    spec = get_model("hist_gradient_boosting_classifier")
    X, y, X_test, _ = _data(spec, rows=200)

    def model():  # the same one twice: the labels are made from its predictions
        return make_pipeline(spec, {"max_iter": 10}, 0, X)

    predicted = fit(model(), spec, X, y)[0].predict(X_test)
    classes = np.unique(y)
    wrong = np.where(predicted == classes[0], classes[1], classes[0])
    half = len(predicted) // 2
    labels = pd.Series(np.concatenate([predicted[:half], wrong[half:]]), index=X_test.index)
    _, curve = fit(model(), spec, X, y, valid=(X_test, labels))
    assert curve.valid[-1] == 0.5  # five rows from each half


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_mlp_curve_is_its_training_loss():
    spec = get_model("mlp_regressor")
    X, y, _, _ = _data(spec)
    fitted, curve = fit(make_pipeline(spec, {"max_iter": 20, "hidden_units": 8}, 0, X), spec, X, y)
    assert curve.metric == "training loss" and curve.valid == []
    assert curve.train == [float(v) for v in fitted[-1].loss_curve_] and curve.steps == list(range(1, 21))


def test_curve_sizes_end_at_the_total_and_never_repeat():
    assert sizes(3) == [1, 2, 3]
    assert sizes(1000) == list(range(100, 1001, 100))
    assert np.all(np.diff(sizes(37)) > 0) and sizes(37)[-1] == 37


@pytest.mark.parametrize("key", ["random_forest_classifier", "extra_trees_classifier", "hist_gradient_boosting_classifier"])
def test_a_three_class_curve_point_is_the_score_of_a_model_of_that_size(key):
    spec = get_model(key)
    df = classification(240)
    df["bought"] = np.where(df.age < 35, "young", np.where(df.age < 60, "middle", "old"))  # three classes
    X, y, X_test, y_test = train_rows(df, "bought", spec)
    _, curve = fit(make_pipeline(spec, {spec.increments: 12}, 2, X), spec, X, y, valid=(X_test, y_test))
    for k, valid in zip(curve.steps, curve.valid):
        alone = reference_fit(spec, {spec.increments: k}, 2, X, y)
        assert valid == accuracy_score(y_test, alone.predict(X_test))
