"""Fitting a pipeline: ensembles grown step by step (progress, learning curve, cancel, resume), others in one call."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ml.model_spec import ModelSpec
from ml.training import make_pipeline

CURVE_SCORE_ROWS = 5000  # rows scored per learning-curve point; keeps the curve cheap on big data


@dataclass
class Curve:
    """Learning curve: score on (a sample of) the training rows and on held-out rows, per step."""

    metric: str
    steps: list[int] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    valid: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "steps": self.steps, "train": self.train, "valid": self.valid}


def _score(model: Pipeline, features: pd.DataFrame, y: pd.Series) -> float:
    return float(model.score(features[:CURVE_SCORE_ROWS], y[:CURVE_SCORE_ROWS]))


StepCallback = Callable[[int, int, Curve], None]
SingleFit = Callable[[Pipeline, pd.DataFrame, pd.Series], Pipeline]


def _plain_fit(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series) -> Pipeline:
    return pipeline.fit(X, y)


def fit(
    pipeline: Pipeline,
    spec: ModelSpec,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    valid: tuple[pd.DataFrame, pd.Series] | None = None,
    on_step: StepCallback = lambda done, total, curve: None,
    resume: tuple[Pipeline, int, Curve] | None = None,
    steps: int = 10,
    single_fit: SingleFit = _plain_fit,
) -> tuple[Pipeline, Curve]:
    """Fit the pipeline. Ensembles grow in `steps` increments (warm_start), so progress and a learning
    curve are reported, cancellation lands between increments, and a retry can resume from a checkpoint
    (`resume` = the pipeline after `done` increments and its curve).

    Growing with warm_start draws the same per-tree seeds as one fit, so the result equals plain
    `pipeline.fit(X, y)` (tests/unit/test_training.py proves it per model).

    Models without increments are fitted in one `single_fit(pipeline, X, y)` call, which returns the fitted
    pipeline: the worker passes one that fits in a child process a cancel can kill (ml/child_fit.py).
    """
    metric = "R²" if spec.task == "regression" else "accuracy"
    if spec.increments is None:
        pipeline = single_fit(pipeline, X, y)
        curve = Curve(metric)
        on_step(1, 1, curve)
        return pipeline, curve
    target = int(pipeline[-1].get_params()[spec.increments])
    sizes = sorted({max(1, round(target * (i + 1) / steps)) for i in range(steps)})
    start = 0
    if resume is not None:
        pipeline, start, curve = resume
        features = pipeline[:-1].transform(X)
    else:
        curve = Curve(metric)
        features = pipeline[:-1].fit_transform(X, y)
    valid_features = pipeline[:-1].transform(valid[0]) if valid is not None else None
    valid_y = np.asarray(valid[1]) if valid is not None else None
    model = pipeline[-1]
    y_arr = np.asarray(y)
    model.set_params(warm_start=True)
    for done, size in enumerate(sizes, start=1):
        if done <= start:
            continue
        model.set_params(**{spec.increments: size})
        model.fit(features, y_arr)
        curve.steps.append(size)
        curve.train.append(_score(model, features, y_arr))
        if valid_features is not None:
            curve.valid.append(_score(model, valid_features, valid_y))
        on_step(done, len(sizes), curve)
    model.set_params(warm_start=False)
    return pipeline, curve


def live_probe(pipeline: Pipeline) -> dict[str, Any]:
    """What can be read from a model while its single `fit` call runs (an MLP's loss per epoch)."""
    model = pipeline[-1]
    losses = getattr(model, "loss_curve_", None)
    if not losses:
        return {}
    return {
        "step": len(losses),
        "of": int(model.get_params().get("max_iter", len(losses))),
        "loss": [float(v) for v in downsample(list(losses))],
    }


def convergence_note(spec: ModelSpec, pipeline: Pipeline, warned: Collection[str]) -> str | None:
    """A plain note for scikit-learn's ConvergenceWarnings during a fit (None without any): the model stopped
    at its iteration limit before it settled, so it may fit worse than it could."""
    if not warned:
        return None
    who = "The network" if spec.key.startswith("mlp") else spec.label
    max_iter = pipeline[-1].get_params().get("max_iter")
    if not isinstance(max_iter, int):
        return f"{who} did not converge, so it may fit worse than it could; try other parameters."
    scale = "" if spec.needs_scaling else ", or scale the features"
    return f"{who} stopped at max_iter={max_iter} before converging, so it may fit worse than it could. Raise max_iter{scale}."


def downsample(values: list, limit: int = 200) -> list:
    """At most `limit` evenly spaced points, always keeping the last one: keeps payloads small."""
    if len(values) <= limit:
        return values
    idx = np.linspace(0, len(values) - 1, limit).round().astype(int)
    return [values[i] for i in idx]


def reference_fit(spec: ModelSpec, params: dict, seed: int, X: pd.DataFrame, y: pd.Series) -> Pipeline:
    """Plain scikit-learn, one call: what `fit` must reproduce."""
    return clone(make_pipeline(spec, params, seed, X)).fit(X, y)
