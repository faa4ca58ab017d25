"""Model files as TrainEasy saved them before pipelines were library-only: the column step was TrainEasy's own
`ml.training.normalise_columns`. Written at test time by the same pipeline the code built then (commit
f896e50), so old files in users' registries stay covered without committing binary files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from ml.catalog import get_model
from ml.persist import save_model
from ml.training import MAX_CATEGORIES, date_columns, normalise_columns, prepare


def legacy_pipeline(spec: Any, params: dict, seed: int, X: pd.DataFrame) -> Pipeline:
    """The pipeline TrainEasy built before (commit f896e50): its own column step, then one numeric and
    one text block."""
    dates = tuple(date_columns(X))
    normalised = normalise_columns(X.head(50), dates)
    numeric = [c for c in normalised if pd.api.types.is_numeric_dtype(normalised[c]) and normalised[c].dtype != bool]
    other = [c for c in normalised if c not in numeric]
    num = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if spec.needs_scaling:
        num.append(("scale", StandardScaler()))
    cat = [
        ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES)),
    ]
    pre = ColumnTransformer([("numeric", Pipeline(num), numeric), ("categorical", Pipeline(cat), other)], sparse_threshold=0.0)
    columns = FunctionTransformer(normalise_columns, kw_args={"dates": dates})
    return Pipeline([("columns", columns), ("preprocess", pre), ("model", spec.build(params, seed))])


FEATURES = ["size", "rooms", "colour", "garden", "listed"]


def write_legacy_models(out: Path) -> dict[str, Any]:
    """Write legacy_{classification,regression}.skops into `out`; return the rows they were asked about (as
    CSV text, "input_csv") and the predictions (and class probabilities) each made then."""
    rng = np.random.default_rng(7)
    n = 40
    frame = pd.DataFrame(
        {
            "size": np.round(rng.normal(9, 1.5, n), 2),
            "rooms": rng.integers(1, 6, n),
            "colour": rng.choice(np.array(["red", "green", "blue", None], dtype=object), n),
            "garden": rng.choice([True, False], n),
            "listed": pd.date_range("2023-01-01", periods=n, freq="5D").strftime("%Y-%m-%d"),
        }
    )
    frame.loc[[0, 7, 13], "size"] = np.nan
    frame["bought"] = np.where(frame["size"].fillna(9) + frame["rooms"] > 12, "yes", "no")
    frame["price"] = np.round(frame["size"].fillna(9) * 10 + frame["rooms"] * 3 + rng.normal(0, 1, n), 2)
    expected: dict[str, Any] = {"input_csv": frame[FEATURES].head(12).to_csv(index=False)}
    rows = pd.read_csv(io.StringIO(expected["input_csv"]))
    for task, model, target in [("classification", "random_forest_classifier", "bought"), ("regression", "ridge", "price")]:
        data = pd.read_csv(io.StringIO(frame[[*FEATURES, target]].to_csv(index=False)))
        spec = get_model(model)
        prep = prepare(data, target, spec)
        params = {"n_estimators": 5} if task == "classification" else {}
        pipeline = legacy_pipeline(spec, params, 0, prep.X).fit(prep.X, prep.y)
        save_model(pipeline, out / f"legacy_{task}.skops")
        expected[task] = {"predictions": pipeline.predict(rows).tolist()}
        if task == "classification":
            expected[task]["probabilities"] = pipeline.predict_proba(rows).tolist()
    return expected
