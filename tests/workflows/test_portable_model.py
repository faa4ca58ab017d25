"""A downloaded model loads outside TrainEasy: the Models page's "load it yourself" lines, run in a fresh
interpreter that can import only the standard library and the model's libraries, reproduce TrainEasy's
own predictions exactly, for a classifier and a regressor with text, boolean, date and number columns."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from importlib import metadata

import numpy as np
import pandas as pd
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from core.accounts import User
from core.config import PROJECT_ROOT
from orchestration.contracts import TrainRequest
from tests.helpers import finished_run, running_workers
from ui.load_snippet import PINNED, ROWS_FILE, load_snippet


def installed_with(*roots: str) -> set[str]:
    """The importable names of these distributions and of everything they require (as pip installs them)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return {m for m, dists in metadata.packages_distributions().items() if any(canonicalize_name(d) in seen for d in dists)}


# What the fresh interpreter may import besides the standard library: what `pip install` of the snippet's
# line brings. Everything else (TrainEasy's folders above all, Streamlit, Temporal) raises ModuleNotFoundError.
ALLOWED = installed_with(*PINNED)

PRELUDE = f"""
import importlib.abc, json, sys
ALLOWED = {sorted(ALLOWED)!r}
blocked = []

class OnlyTheLibraries(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in ALLOWED or top.startswith("_"):
            return None  # the normal finders go on
        blocked.append(top)
        raise ModuleNotFoundError(f"not installed here: {{name}}", name=name)

sys.meta_path.insert(0, OnlyTheLibraries())
assert not any(p.rstrip("/") == {str(PROJECT_ROOT)!r} for p in sys.path), sys.path
"""

EPILOGUE = f"""
import os
files = [getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]
ours = [f for f in files if f.startswith({str(PROJECT_ROOT)!r} + os.sep) and not f.startswith(sys.prefix + os.sep)]
assert not ours, ours  # nothing was read from TrainEasy's folder (its venv aside)
out = {{"predictions": predictions.tolist(), "blocked": sorted(set(blocked))}}
if "probabilities" in globals():
    out["classes"] = [str(c) for c in probabilities.columns]
    out["probabilities"] = probabilities.round(6).values.tolist()
print(json.dumps(out))
"""


def houses(rows: int = 240, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "size": rng.normal(90, 25, rows).round(1),
            "rooms": rng.integers(1, 7, rows),
            "district": rng.choice(["north", "south", "east", "west"], rows),
            "garden": rng.choice(["yes", "no"], rows),
            "listed": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D"),
        }
    )
    df["listed"] = df["listed"].dt.strftime("%Y-%m-%d")
    df.loc[::9, "size"] = np.nan
    df.loc[::7, "district"] = None
    df["price"] = (3 * df["size"].fillna(90) + 20 * df.rooms + 40 * (df.district == "north") + rng.normal(0, 10, rows)).round(1)
    df["sold"] = np.where(df.price > df.price.median(), "fast", "slow")
    return df


def run_fresh(folder, script: str) -> dict:
    """`python -I` (no PYTHONPATH, no user site, no script folder on sys.path) in a folder of its own."""
    (folder / "load.py").write_text(PRELUDE + script + EPILOGUE)
    done = subprocess.run(
        [sys.executable, "-I", "load.py"], cwd=folder, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_a_downloaded_model_predicts_in_a_fresh_interpreter_as_in_traineasy(client, settings, service, tmp_path):
    user = User(f"port_{uuid.uuid4().hex[:6]}")
    data = houses()
    new_rows = data.drop(columns=["price", "sold"]).sample(40, random_state=1)
    new_rows.loc[new_rows.index[:3], "district"] = "harbour"  # a district never seen in training
    csv = new_rows.to_csv(index=False).encode()
    async with running_workers(client, settings):
        train = data.drop(columns=["sold"]).to_csv(index=False).encode()
        regress = await service.upload_dataset(user, "prices.csv", train)
        classify = await service.upload_dataset(user, "sales.csv", data.drop(columns=["price"]).to_csv(index=False).encode())
        runs = [
            await service.start_training(
                user, TrainRequest(user.name, classify.dataset_id, "sold", "random_forest_classifier", {"n_estimators": 30})
            ),
            await service.start_training(
                user, TrainRequest(user.name, regress.dataset_id, "price", "hist_gradient_boosting_regressor")
            ),
        ]
        for run_id in runs:
            view = await finished_run(service, user, run_id, timeout=180)
            assert view.status == "completed", view.error
        models = service.list_models(user)
        assert {m.card["task"] for m in models} == {"classification", "regression"}
        for model in models:
            # TrainEasy's own predictions, made by a worker
            result = await service.predict(user, model.id, "new.csv", csv)
            ours = pd.read_csv(io.BytesIO(service.prediction_file(user, result.file)))

            # the download, in a folder of its own with the user's rows, and the page's lines run there
            blob, _ = service.model_download(user, model.id)
            folder = tmp_path / model.name
            folder.mkdir()
            filename = f"{model.name}-v{model.version}.skops"
            (folder / filename).write_bytes(blob)
            (folder / ROWS_FILE).write_bytes(csv)
            snippet = load_snippet(model, filename)  # as the Models page shows it
            assert snippet is not None
            assert f'"scikit-learn=={model.card["versions"]["scikit-learn"]}"' in snippet.install
            assert f'"skops=={model.card["versions"]["skops"]}"' in snippet.install
            assert "pandas.to_datetime" in snippet.python  # the date column is parsed by the file itself
            theirs = run_fresh(folder, snippet.python)

            assert "ml" not in theirs["blocked"], "the model file asked for TrainEasy's own code"
            assert theirs["predictions"] == ours["prediction"].tolist()
            if model.card["task"] == "classification":
                assert theirs["classes"] == ["fast", "slow"]
                probabilities = ours[[f"probability_{c}" for c in theirs["classes"]]].values.tolist()
                assert theirs["probabilities"] == probabilities
