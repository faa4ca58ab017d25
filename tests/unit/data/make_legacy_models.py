"""Writes legacy_{classification,regression}.skops and legacy_models.json: models as TrainEasy saved them
before pipelines were library-only (their column step is `ml.training.normalise_columns`).

Run it inside a checkout of commit f896e50 (the last one that saved such files), from that checkout's root:
    git worktree add /tmp/legacy f896e50 && cd /tmp/legacy && \
    /work/main/.venv/bin/python /work/main/tests/unit/data/make_legacy_models.py /work/main/tests/unit/data
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, ".")
from ml.catalog import get_model  # noqa: E402  (the checkout's own code)
from ml.persist import save_model  # noqa: E402
from ml.training import make_pipeline, prepare  # noqa: E402

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
features = ["size", "rooms", "colour", "garden", "listed"]
rows = pd.read_csv(io.StringIO(frame[features].head(12).to_csv(index=False)))

out = Path(sys.argv[1])
expected: dict = {"input_csv": frame[features].head(12).to_csv(index=False)}
for task, model, target in [("classification", "random_forest_classifier", "bought"), ("regression", "ridge", "price")]:
    data = pd.read_csv(io.StringIO(frame[[*features, target]].to_csv(index=False)))
    spec = get_model(model)
    prep = prepare(data, target, spec)
    params = {"n_estimators": 5} if task == "classification" else {}
    pipeline = make_pipeline(spec, params, 0, prep.X).fit(prep.X, prep.y)
    save_model(pipeline, out / f"legacy_{task}.skops")
    expected[task] = {"predictions": pipeline.predict(rows).tolist()}
    if task == "classification":
        expected[task]["probabilities"] = pipeline.predict_proba(rows).tolist()
(out / "legacy_models.json").write_text(json.dumps(expected, indent=1) + "\n")
print("wrote", *sorted(p.name for p in out.glob("legacy_*")))
