"""How values are named on screen: metrics, times, sizes, and model and dataset choices that are always
told apart. Plain text: pass it through md() before drawing it as markdown."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.model_record import ModelRecord

METRIC_NAMES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "f1_macro": "F1 (macro)",
    "roc_auc": "ROC AUC",
    "log_loss": "log loss",
    "r2": "R²",
    "rmse": "RMSE",
    "mae": "MAE",
}


def metric_name(key: object) -> str:
    """The name a user reads for a metric key ("balanced_accuracy" -> "balanced accuracy"), the same on
    the metric cards, tables and charts."""
    text = str(key)
    return METRIC_NAMES.get(text, text.replace("_", " "))


def when(value: object) -> str:
    """A time as "2026-11-26 18:02 UTC": an ISO text or a datetime (without a zone: read as UTC);
    anything else as it is, nothing for None."""
    if value is None or value == "":
        return ""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def size(n: float | None) -> str:
    """Bytes as "0.5 KB", "9.3 KB", "9.3 MB", "1.2 GB"."""
    if n is None:
        return ""
    for unit, scale in (("GB", 2**30), ("MB", 2**20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1024:.1f} KB"


def unique(labels: Iterable[str]) -> list[str]:
    """The labels, each repeat numbered ("a", "a (2)"), so charts and choices never merge two of them."""
    labels = list(labels)
    taken, seen, out = set(labels), Counter[str](), []
    for label in labels:
        seen[label] += 1
        if seen[label] == 1:
            out.append(label)
            continue
        n = seen[label]
        while f"{label} ({n})" in taken:
            n += 1
        taken.add(f"{label} ({n})")
        out.append(f"{label} ({n})")
    return out


def dataset_key(m: ModelRecord) -> str:
    """The id of the dataset a model was trained on (the record's, else its card's)."""
    return m.dataset_id or str((m.card.get("dataset") or {}).get("id") or "")


def dataset_labels(models: Iterable[ModelRecord], uploaded: Mapping[str, str] | None = None) -> dict[str, str]:
    """Dataset id -> the name to show. Two uploads of the same name are told apart by their upload time
    (when still stored and different) or else by the start of their id: "sales.csv (uploaded 2026-11-26
    18:02 UTC)", "sales.csv (id 2d3745)"."""
    names: dict[str, str] = {}
    for m in models:
        names.setdefault(dataset_key(m), m.dataset_name)
    uploaded = uploaded or {}
    out = dict(names)
    for name, count in Counter(names.values()).items():
        if count < 2:
            continue
        ids = [i for i, n in names.items() if n == name]
        times = [when(uploaded.get(i)) for i in ids]
        by_time = all(times) and len(set(times)) == len(times)
        n = next((n for n in range(6, max(map(len, ids)) + 1) if len({i[:n] for i in ids}) == len(ids)), None)
        for i, t in zip(ids, times):
            out[i] = f"{name} (uploaded {t})" if by_time else f"{name} (id {i[:n] if n else i})"
    return out


def model_labels(
    models: Iterable[ModelRecord], uploaded: Mapping[str, str] | None = None, with_data: bool = False
) -> dict[int, str]:
    """Model id -> a label no other of `models` has: "logistic_regression v3", with " · dataset → target"
    when another model has the same name and version (or always, `with_data`)."""
    models = list(models)
    data = dataset_labels(models, uploaded)
    shared = {label for label, n in Counter(m.label for m in models).items() if n > 1}
    full = {m.id: f"{m.label} · {data[dataset_key(m)]} → {m.target}" for m in models}
    labels = [full[m.id] if with_data or m.label in shared else m.label for m in models]
    return dict(zip((m.id for m in models), unique(labels)))


# st.dataframe(..., placeholder=MISSING): a missing value (a score a model does not have, a stage not run)
# is drawn as an empty cell, not "None"; the column keeps its type, so it still sorts as numbers
MISSING = ""
