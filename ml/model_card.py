"""The model card: what a registered model was trained on, how, with which library versions and scores."""

from __future__ import annotations

import platform
from typing import Any

from ml.model_spec import ModelSpec
from ml.schema import input_schema
from ml.training import Prepared


def library_versions() -> dict[str, str]:
    import numpy
    import pandas
    import sklearn
    import skops

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "skops": skops.__version__,
    }


def model_card(
    spec: ModelSpec,
    prep: Prepared,
    *,
    run_id: str,
    owner: str,
    model: str,
    params: dict[str, Any],
    seed: int,
    test_size: float,
    cv_folds: int,
    target: str,
    dataset_id: str,
    dataset_name: str | None,
    dataset_sha256: str | None,
    metrics: dict[str, float],
    costs: dict[str, float],
    skops_trusted: list[str] | None = None,
) -> dict[str, Any]:
    """The card of a model fitted with `spec` on `prep`; `costs` are the fit's time and memory;
    `skops_trusted` the types to pass to `skops.io.load` outside TrainEasy (`ml.persist.skops_trusted`)."""
    return {
        "run_id": run_id,
        "owner": owner,
        "model": model,
        "model_label": spec.label,
        "task": spec.task,
        "params": params,
        "seed": seed,
        "test_size": test_size,
        "cv_folds": cv_folds,
        "target": target,
        "classes": [str(c) for c in sorted(prep.y.unique(), key=str)] if spec.task == "classification" else [],
        "dataset": {"id": dataset_id, "name": dataset_name, "sha256": dataset_sha256, "rows": len(prep.y)},
        "input_schema": input_schema(prep.X),
        "metrics": metrics,
        "versions": library_versions(),
        "skops_trusted": skops_trusted,
        **costs,
    }
