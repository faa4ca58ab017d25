"""The "load it yourself" lines for a downloaded model: the exact library versions, then skops and pandas.

Pure text from the model's card (no scikit-learn here: the web process never imports it), so a test can run
the very lines the page shows in a fresh interpreter (tests/workflows/test_portable_model.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.model_record import ModelRecord

# the libraries a saved pipeline is made of, in the order pip is told about them
PINNED = ("scikit-learn", "skops", "pandas", "numpy")
ROWS_FILE = "new_rows.csv"


@dataclass(frozen=True)
class LoadSnippet:
    install: str  # one shell line
    python: str  # a script: load the file, read the rows, predict


def _list(name: str, items: list[str], width: int = 96) -> str:
    """`name = [...]`, one item per line when it does not fit on one (a model may have 500 columns)."""
    one_line = f"{name} = [{', '.join(map(repr, items))}]"
    if len(one_line) <= width:
        return one_line
    return "\n".join([f"{name} = [", *(f"    {item!r}," for item in items), "]"])


def load_snippet(model: ModelRecord, filename: str) -> LoadSnippet | None:
    """The lines that load `filename` (the downloaded model) and predict, or None for a model saved by an
    earlier TrainEasy whose file needs TrainEasy's own code (its card names no `skops_trusted`)."""
    trusted = model.skops_trusted
    if trusted is None:
        return None
    versions = model.library_versions
    install = "pip install " + " ".join(f'"{lib}=={versions[lib]}"' for lib in PINNED if versions.get(lib))
    features = model.feature_columns
    lines = [
        "import pandas as pd",
        "import skops.io as sio",
        "",
        "# skops asks before it loads these (all from numpy, pandas and scikit-learn)",
        _list("trusted", trusted),
        f"model = sio.load({filename!r}, trusted=trusted)",
        "",
        f"# your rows: a CSV with the columns the model was trained on (not the target, {model.target!r})",
        _list("features", features),
        f"rows = pd.read_csv({ROWS_FILE!r}, skipinitialspace=True)",
        "predictions = model.predict(rows[features])",
    ]
    if model.task == "classification":
        lines += [
            'if hasattr(model, "predict_proba"):  # one column per class, in the order of model.classes_',
            "    probabilities = pd.DataFrame(model.predict_proba(rows[features]), columns=model.classes_)",
        ]
    return LoadSnippet(install, "\n".join(lines) + "\n")
