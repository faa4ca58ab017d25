"""Training steps as pure functions on DataFrames: no files, no Temporal. The seed is always a parameter."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml.catalog import ModelSpec

MAX_CATEGORIES = 50   # one-hot width per column: keeps an ID-like text column from exploding memory


class DataError(ValueError):
    """The data cannot train the chosen model; the message says what to change."""


@dataclass(frozen=True)
class Prepared:
    X: pd.DataFrame
    y: pd.Series
    dropped_missing_target: int
    classes: int            # 0 for regression


def prepare(df: pd.DataFrame, target: str, spec: ModelSpec) -> Prepared:
    """Separate features from the target and refuse data the model cannot learn from."""
    if target not in df.columns:
        raise DataError(f"The target column {target!r} is not in this dataset.")
    missing = df[target].isna()
    data = df.loc[~missing]
    y, X = data[target], data.drop(columns=[target])
    if X.shape[1] == 0:
        raise DataError("There are no feature columns besides the target.")
    if len(data) < 10:
        raise DataError(f"Only {len(data)} rows have a target value; at least 10 are needed to train and test.")
    classes = 0
    if spec.task == "regression":
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise DataError(
                f"{spec.label} predicts numbers, but {target!r} holds text or categories. "
                "Pick a classification model or a numeric target."
            )
    else:
        classes = int(y.nunique())
        if classes < 2:
            raise DataError(f"The target {target!r} has a single class; a classifier needs at least two.")
        if pd.api.types.is_float_dtype(y) and classes > 50:
            raise DataError(
                f"The target {target!r} has {classes} distinct numeric values; that is a regression target. "
                "Pick a regression model."
            )
    return Prepared(X=X, y=y, dropped_missing_target=int(missing.sum()), classes=classes)


def split(prepared: Prepared, test_size: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the train and test sets."""
    positions = np.arange(len(prepared.y))
    strat = prepared.y if stratify and prepared.y.value_counts().min() >= 2 else None
    train, test = train_test_split(positions, test_size=test_size, random_state=seed, stratify=strat)
    return np.sort(train), np.sort(test)


def build_preprocessor(X: pd.DataFrame, scale: bool) -> ColumnTransformer:
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    other = [c for c in X.columns if c not in numeric]
    num_steps = [("impute", SimpleImputer(strategy="median"))] + ([("scale", StandardScaler())] if scale else [])
    cat_steps = [
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES)),
    ]
    return ColumnTransformer(
        [("numeric", Pipeline(num_steps), numeric), ("categorical", Pipeline(cat_steps), other)],
        sparse_threshold=0.0,
    )


def _as_categories(X: pd.DataFrame) -> pd.DataFrame:
    """Non-numeric columns as plain object dtype, so imputation and encoding treat them alike."""
    out = X.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].astype(object).where(out[c].notna(), np.nan)
    return out


def make_pipeline(spec: ModelSpec, params: dict, seed: int, X: pd.DataFrame) -> Pipeline:
    from sklearn.preprocessing import FunctionTransformer

    return Pipeline([
        ("categories", FunctionTransformer(_as_categories)),
        ("preprocess", build_preprocessor(X, spec.needs_scaling)),
        ("model", spec.build(params, seed)),
    ])


def fit(
    pipeline: Pipeline, spec: ModelSpec, X: pd.DataFrame, y: pd.Series,
    on_step: Callable[[int, int], None] = lambda done, total: None, steps: int = 10,
) -> Pipeline:
    """Fit the pipeline; ensembles grow in increments so that progress is reported and cancellation lands.

    Growing a forest with warm_start draws the same per-tree seeds as one fit, so the result equals
    plain `pipeline.fit(X, y)`.
    """
    if spec.increments is None:
        on_step(0, 1)
        pipeline.fit(X, y)
        on_step(1, 1)
        return pipeline
    features = pipeline[:-1].fit_transform(X, y)
    model = pipeline[-1]
    target = int(model.get_params()[spec.increments])
    sizes = sorted({max(1, round(target * (i + 1) / steps)) for i in range(steps)})
    model.set_params(warm_start=True)
    for done, size in enumerate(sizes, start=1):
        model.set_params(**{spec.increments: size})
        model.fit(features, y)
        on_step(done, len(sizes))
    model.set_params(warm_start=False)
    return pipeline


def evaluate(pipeline: Pipeline, task: str, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    from sklearn import metrics as m

    pred = pipeline.predict(X)
    if task == "regression":
        return {
            "r2": float(m.r2_score(y, pred)),
            "rmse": float(np.sqrt(m.mean_squared_error(y, pred))),
            "mae": float(m.mean_absolute_error(y, pred)),
        }
    return {
        "accuracy": float(m.accuracy_score(y, pred)),
        "balanced_accuracy": float(m.balanced_accuracy_score(y, pred)),
        "f1_macro": float(m.f1_score(y, pred, average="macro")),
    }


def reference_fit(spec: ModelSpec, params: dict, seed: int, X: pd.DataFrame, y: pd.Series) -> Pipeline:
    """Plain scikit-learn, one call: what `fit` must reproduce."""
    return clone(make_pipeline(spec, params, seed, X)).fit(X, y)
