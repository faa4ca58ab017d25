"""Learning curves after one fit, from the fitted model's own stages: the predictions after each tree or iteration
(`staged_predict` for boosting, the trees one by one for a forest), scored at up to CURVE_POINTS sizes on a
sample of rows. The point at size k is the score a model of k stages fitted alone would get (the stages of a
larger fit are the same ones: tests/unit/test_training.py checks it), and it costs about one prediction of the
whole model on the sample, instead of a fit in parts scored after each.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score
from sklearn.pipeline import Pipeline

from ml.fit_progress import FORESTS

# rows scored per learning-curve point (training rows, and held-out rows): an accuracy within about a point (its
# standard error at 2,000 rows is at most 1.1%), for a tenth of a second of a 100-tree forest's run instead of
# a quarter (the curve costs a prediction of the whole model on these rows)
CURVE_SCORE_ROWS = 2000
CURVE_POINTS = 10


def score_sample(count: int) -> np.ndarray:
    """Positions of the rows a curve point scores among `count` rows: CURVE_SCORE_ROWS of them spread evenly, all
    if fewer. Not the first ones: rows come in file order, and a file sorted by its target or by date would score
    one class or one period (the accuracy's error above holds for a sample of the whole, not of its start)."""
    take = min(count, CURVE_SCORE_ROWS)
    return np.arange(take) * count // max(take, 1)


@dataclass
class Curve:
    """Learning curve: score on (a sample of) the training rows and on held-out rows, per step."""

    metric: str
    steps: list[int] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    valid: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # rows each point scores: of the training rows, of the held-out

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "steps": self.steps, "train": self.train, "valid": self.valid, "rows": self.rows}


def curve_metric(task: str) -> str:
    return "R²" if task == "regression" else "accuracy"


def sizes(total: int, points: int = CURVE_POINTS) -> list[int]:
    """Up to `points` evenly spaced sizes ending at `total`."""
    return sorted({max(1, round(total * (i + 1) / points)) for i in range(points)})


def stage_count(model: Any) -> int | None:
    """Stages (trees, iterations) of a fitted model whose predictions can be followed stage by stage; else None."""
    if isinstance(model, FORESTS):
        return len(model.estimators_)
    if not hasattr(model, "staged_predict"):
        return None
    return int(model.n_iter_) if hasattr(model, "n_iter_") else len(model.estimators_)


def staged_predictions(model: Any, features: np.ndarray, steps: Collection[int]) -> Iterator[np.ndarray]:
    """The model's predictions after its first k stages, for each k of `steps` in increasing order."""
    if not isinstance(model, FORESTS):
        for k, predicted in enumerate(model.staged_predict(features), start=1):
            if k in steps:
                yield predicted
        return
    # what the forest's predict computes, tree after tree: the mean of the trees' outputs so far
    rows = np.ascontiguousarray(features, dtype=np.float32)  # the trees' own input type (the forest converts too)
    classify = hasattr(model, "classes_")
    total = None
    for k, tree in enumerate(model.estimators_, start=1):
        out = tree.predict_proba(rows, check_input=False) if classify else tree.predict(rows, check_input=False)
        if total is None:
            total = out.copy()
        else:
            total += out
        if k in steps:
            mean = total / k
            yield model.classes_.take(np.argmax(mean, axis=1), axis=0) if classify else mean


def accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """`accuracy_score`'s figure, the share of predictions equal to their label, without its checks, which sort
    the labels on every call: a third of a 100-tree forest's curve."""
    return float(np.average(truth == predicted))


def learning_curve(
    pipeline: Pipeline, task: str, X: pd.DataFrame, y: pd.Series, valid: tuple[pd.DataFrame, pd.Series] | None
) -> Curve:
    """The fitted pipeline's curve on CURVE_SCORE_ROWS training rows spread over them (`score_sample`) and on `valid`
    (as many held-out rows at most, spread the same way); an empty curve for a model without stages. Both samples
    are predicted together (a row's prediction is its own), in one pass over the stages."""
    curve = Curve(curve_metric(task))
    model = pipeline[-1]
    total = stage_count(model)
    if not total:
        return curve
    curve.steps = sizes(total)
    score = r2_score if task == "regression" else accuracy
    samples = [(X, y)] + ([valid] if valid is not None else [])
    picked = [score_sample(len(rows)) for rows, _ in samples]
    curve.rows = [len(p) for p in picked]
    features = np.concatenate([pipeline[:-1].transform(rows.iloc[p]) for (rows, _), p in zip(samples, picked)])
    truths = [np.asarray(target.iloc[p]) for (_, target), p in zip(samples, picked)]
    edges = np.cumsum([0, *curve.rows])
    outs = (curve.train, curve.valid)
    for predicted in staged_predictions(model, features, set(curve.steps)):
        for i, truth in enumerate(truths):
            outs[i].append(float(score(truth, predicted[edges[i] : edges[i + 1]])))
    return curve
