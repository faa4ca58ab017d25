"""Fitting a pipeline in one call, as plain scikit-learn does, with live progress from the estimator's own output
(ml/fit_progress.py) and the learning curve from its stages afterwards (ml/curves.py).

Fits in parts (warm_start) cost: histogram gradient boosting re-bins every row and re-predicts all earlier trees on
each call (1.74x one fit at 1M rows), gradient boosting re-predicts its earlier stages, and even a forest pays
the labels' encoding and the input checks per call (+35-50% for ten parts of cheap extra trees at 300k rows).
So every model fits in one call, except a forest whose fit lasts longer than a checkpoint interval: it grows
in parts of about that many seconds each (`Growth`), so a retry after a dead worker resumes from the last part.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ml.curves import Curve, learning_curve
from ml.fit_progress import FORESTS, FitProgress, reporting
from ml.model_spec import ModelSpec
from ml.training import make_pipeline

MAX_PARTS = 10  # a forest grown in parts makes about this many calls at most (each part's checks cost a little)
SAVE_SHARE = 0.05  # checkpoints take at most about this share of a forest's fit (a big forest's take long)

__all__ = ["Curve", "FitProgress", "Growth", "convergence_note", "downsample", "fit", "live_probe", "reference_fit"]


@dataclass
class Growth:
    """A forest grown in parts of about `every` seconds of fitting, `save(pipeline, trees)` called after a part
    once `every` seconds passed since the last (a checkpoint; never after the last part, and less often when
    saving would take over SAVE_SHARE of the time); `resume`: the pipeline a checkpoint holds, to grow on from
    its trees. The first part is one tree, which times a tree: a fit that will not outlast `every` then ends in
    one more call. Growing with warm_start draws the same per-tree seeds as one fit, so the forest is the same.
    Other models ignore it (their parts are not free)."""

    every: float
    save: Callable[[Pipeline, int], None]
    resume: Pipeline | None = None


def fit(
    pipeline: Pipeline,
    spec: ModelSpec,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    valid: tuple[pd.DataFrame, pd.Series] | None = None,
    progress: FitProgress | None = None,
    growth: Growth | None = None,
    fitted: Callable[[Pipeline], None] | None = None,
) -> tuple[Pipeline, Curve]:
    """`pipeline.fit(X, y)` in one call (or a forest in parts, see `Growth`), with `progress` following it, then
    the learning curve on a sample of `X` and of the held-out rows `valid`. The fitted pipeline equals plain
    `pipeline.fit(X, y)` (tests/unit/test_training.py proves it per model). `fitted` is called with it before the
    curve is computed (the fit child sends it to the worker and stores it then, before the curve)."""
    progress = progress if progress is not None else FitProgress()
    if spec.increments:
        progress.of = int(pipeline[-1].get_params()[spec.increments])
    growth = growth if isinstance(pipeline[-1], FORESTS) else None  # only a forest's parts are free
    if growth is not None and growth.resume is not None:
        # the checkpoint's model was saved mid-growth (warm_start, its part's size): the request's settings again
        settings = pipeline[-1].get_params(deep=False)
        pipeline = growth.resume
        pipeline[-1].set_params(**settings)
    with reporting(pipeline, progress) as fit_params:
        if growth is not None:
            _grow(pipeline, X, y, progress, growth)
        else:
            pipeline.fit(X, y, **fit_params)
    progress.step = progress.of
    if fitted is not None:
        fitted(pipeline)
    curve = learning_curve(pipeline, spec.task, X, y, valid)
    if not curve.steps and (losses := _losses(pipeline)):
        curve = Curve("training loss", list(range(1, len(losses) + 1)), losses)
    return pipeline, curve


def _grow(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, progress: FitProgress, growth: Growth) -> None:
    model, labels = pipeline[-1], np.asarray(y)
    target = int(model.get_params()["n_estimators"])
    done = len(getattr(model, "estimators_", []))
    features = pipeline[:-1].transform(X) if done else pipeline[:-1].fit_transform(X, y)
    model.set_params(warm_start=True)
    per_tree: float | None = None
    saved, save_cost = time.monotonic(), 0.0
    while done < target:
        if per_tree is None:
            size = done + 1
        elif (target - done) * per_tree <= growth.every:
            size = target
        else:
            size = min(target, done + max(math.ceil(target / MAX_PARTS), int(growth.every / per_tree)))
        progress.base = done
        started = time.monotonic()
        model.set_params(n_estimators=size)
        model.fit(features, labels)
        per_tree, done = (time.monotonic() - started) / (size - done), size
        if done < target and time.monotonic() - saved >= max(growth.every, save_cost / SAVE_SHARE):
            started = time.monotonic()
            growth.save(pipeline, done)
            saved = time.monotonic()
            save_cost = saved - started
    model.set_params(warm_start=False)


def _losses(pipeline: Pipeline) -> list[float]:
    return [float(v) for v in getattr(pipeline[-1], "loss_curve_", None) or []]


def live_probe(pipeline: Pipeline, progress: FitProgress | None = None) -> dict[str, Any]:
    """What can be read while a single `fit` call runs: an MLP's loss per epoch, or the trees or iterations done."""
    losses = _losses(pipeline)
    if losses:
        return {
            "step": len(losses),
            "of": int(pipeline[-1].get_params().get("max_iter", len(losses))),
            "loss": downsample(losses),
            "unit": "epoch",
        }
    if progress is not None and progress.of:
        return {"step": progress.step, "of": progress.of, "unit": progress.unit}
    return {}


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
