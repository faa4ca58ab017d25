"""Imported once by the fit fork server (see ml/child_fit.py), never by anything else.

A tiny fit of every model family here (as a child fits: with its progress read and its learning curve) runs
the code paths that scikit-learn only takes on first use (lazy imports, caches), so each forked child starts
with them done and a tiny fit in a child costs about what it costs in-process. `gc.freeze()` then keeps the
collector from touching (and so copying) the fork server's objects in every child.
"""

from __future__ import annotations

import gc
import warnings


def _warm() -> None:
    import numpy as np
    import pandas as pd

    from ml.catalog import MODELS
    from ml.fitting import fit
    from ml.training import make_pipeline

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.choice(["x", "y"], 40).astype(object)})
    labels = pd.Series(np.where(X["a"] > 0, "p", "q"))
    numbers = pd.Series(X["a"] * 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for spec in MODELS.values():
            small = {p.name: p.min for p in spec.params if p.name in ("n_estimators", "max_iter", "hidden_units")}
            try:
                y = labels if spec.task == "classification" else numbers
                model, _ = fit(make_pipeline(spec, small, 0, X), spec, X, y, valid=(X, y))
                model.predict(X)
                if hasattr(model[-1], "predict_proba"):
                    model.predict_proba(X)
            except Exception:  # noqa: BLE001 - a warm-up is an optimisation; the children work without it
                pass


_warm()
gc.freeze()
