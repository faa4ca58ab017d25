"""Held-out evaluation: metrics, chart data (small, downsampled) and feature importance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn import metrics as m
from sklearn.base import ClassifierMixin
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from ml.fitting import downsample

MAX_POINTS = 1000  # scatter points kept for regression charts
MAX_CURVE_CLASSES = 10  # one-vs-rest ROC/PR curves drawn for at most this many classes
IMPORTANCE_ROWS = 1000  # held-out rows used for permutation importance (its cost grows with both)
IMPORTANCE_REPEATS = 3


def metrics_for(
    task: str, y: ArrayLike, pred: ArrayLike, proba: np.ndarray | None = None, classes: Sequence[Any] | np.ndarray | None = None
) -> dict[str, float]:
    if task == "regression":
        return {
            "r2": float(m.r2_score(y, pred)),
            "rmse": float(np.sqrt(m.mean_squared_error(y, pred))),
            "mae": float(m.mean_absolute_error(y, pred)),
        }
    if classes is not None and (coded := class_codes(classes, y, pred)) is not None:  # the same figures, faster
        (y, pred), classes = coded, range(len(classes))
    out = {
        "accuracy": float(m.accuracy_score(y, pred)),
        "balanced_accuracy": float(m.balanced_accuracy_score(y, pred)),
        "f1_macro": float(m.f1_score(y, pred, average="macro")),
    }
    if proba is not None and classes is not None and len(np.unique(y)) >= 2:  # probabilities come with classes
        labels = list(classes)
        try:
            if len(labels) == 2:
                out["roc_auc"] = float(m.roc_auc_score(y, proba[:, 1]))
            else:
                out["roc_auc"] = float(m.roc_auc_score(y, proba, multi_class="ovr", labels=labels))
        except ValueError:  # a class absent from the test rows: AUC is undefined, not an error
            pass
        if set(np.unique(y)) <= set(labels):  # a class unseen in training makes log loss undefined
            out["log_loss"] = float(m.log_loss(y, proba, labels=labels))
    return out


# classifiers whose predict() is, in scikit-learn's own code, the class of the highest predict_proba(): their
# predictions are read from the probabilities instead of being computed a second time (a second pass over the
# test rows: a second on 200,000 rows of boosting). tests/unit/test_evaluation.py checks that they are equal.
ARGMAX_PREDICT = frozenset(
    {
        "HistGradientBoostingClassifier",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
    }
)


def predictions(pipeline: Pipeline, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """(predicted classes, class probabilities or None) of a classifier on these rows."""
    model = pipeline[-1]
    if not hasattr(model, "predict_proba"):
        return pipeline.predict(X), None
    proba = pipeline.predict_proba(X)
    if type(model).__name__ in ARGMAX_PREDICT and type(model).__module__.startswith("sklearn."):
        return model.classes_.take(proba.argmax(axis=1)), proba
    return pipeline.predict(X), proba


def class_codes(classes: Sequence[Any] | np.ndarray, *columns: ArrayLike) -> list[np.ndarray] | None:
    """Each column of labels as positions in `classes` (the model's sorted `classes_`), or None if a label is
    not one of them. Metrics on these small integers equal those on the labels (the same order, so the same
    positive class) and cost far less: scikit-learn sorts the labels for every metric, and sorting 200,000
    strings takes a quarter of a second each time."""
    index = pd.Index(list(classes))
    if not index.is_unique:
        return None
    codes = [index.get_indexer(np.asarray(column)) for column in columns]
    return None if any((c < 0).any() for c in codes) else codes


def evaluate(pipeline: Pipeline, task: str, X: pd.DataFrame, y: pd.Series) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, chart data) on held-out rows."""
    y = np.asarray(y)
    if task == "regression":
        pred = pipeline.predict(X)
        idx = downsample(list(range(len(y))), MAX_POINTS)
        scatter = {"actual": [float(y[i]) for i in idx], "predicted": [float(pred[i]) for i in idx]}
        return metrics_for(task, y, pred), scatter
    classes: Sequence[Any] = list(pipeline[-1].classes_)
    pred, proba = predictions(pipeline, X)
    labels = [str(c) for c in classes]
    coded = class_codes(classes, y, pred)
    if coded is not None:  # the same figures, on class positions
        (y, pred), classes = coded, range(len(classes))
    charts: dict[str, Any] = {
        "labels": labels,
        "confusion": m.confusion_matrix(y, pred, labels=classes).tolist(),
        "roc": [],
        "pr": [],
    }
    if proba is not None:
        shown = range(1, 2) if len(classes) == 2 else range(min(len(classes), MAX_CURVE_CLASSES))
        for k in shown:
            truth = (y == classes[k]).astype(int)
            if truth.min() == truth.max():
                continue
            fpr, tpr, _ = m.roc_curve(truth, proba[:, k])
            prec, rec, _ = m.precision_recall_curve(truth, proba[:, k])
            charts["roc"].append(
                {"label": labels[k], "x": downsample(fpr.tolist()), "y": downsample(tpr.tolist()), "auc": float(m.auc(fpr, tpr))}
            )
            charts["pr"].append({"label": labels[k], "x": downsample(rec.tolist()), "y": downsample(prec.tolist())})
    return metrics_for(task, y, pred, proba, classes), charts


def feature_importance(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, seed: int) -> list[dict[str, Any]]:
    """Permutation importance of every raw input column on held-out rows (works for every model), most
    important first. All of them: the chart shows the top ones and sums the rest into one "others" bar."""
    n = min(len(X), IMPORTANCE_ROWS)
    Xs, ys = X.iloc[:n], y.iloc[:n]
    scoring, target = importance_scoring(pipeline, ys)
    result = permutation_importance(
        pipeline, Xs, target, scoring=scoring, n_repeats=IMPORTANCE_REPEATS, random_state=seed, n_jobs=1
    )
    ranked = sorted(zip(X.columns, result.importances_mean, result.importances_std), key=lambda t: -t[1])
    return [{"feature": str(f), "importance": float(mu), "std": float(sd)} for f, mu, sd in ranked]


Scorer = Callable[[Pipeline, pd.DataFrame, np.ndarray], float]


def importance_scoring(pipeline: Pipeline, y: pd.Series) -> tuple[Scorer | None, ArrayLike]:
    """The scorer and target of the permutation importance: a classifier's own score (accuracy) counted on class
    positions, when it scores with scikit-learn's accuracy and every label is one of its classes (`class_codes`);
    else the model's own score (None) on the labels. The same figure: scikit-learn's accuracy_score checks and
    sorts the labels on each of its features x repeats calls, a quarter of the importance's time at 1,000 rows
    of a boosting model."""
    model = pipeline[-1]
    classes = getattr(model, "classes_", None)
    if classes is None or type(model).score is not ClassifierMixin.score:
        return None, y
    coded = class_codes(classes, y)
    if coded is None:
        return None, y
    index = pd.Index(list(classes))

    def accuracy(estimator: Pipeline, X: pd.DataFrame, codes: np.ndarray) -> float:
        return float(np.average(index.get_indexer(np.asarray(estimator.predict(X))) == codes))

    return accuracy, coded[0]


def cv_summary(fold_metrics: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each metric over the folds."""
    names = fold_metrics[0].keys() if fold_metrics else []
    return {
        k: {"mean": float(np.mean([f[k] for f in fold_metrics])), "std": float(np.std([f[k] for f in fold_metrics]))}
        for k in names
    }
