"""How a run reads as text and tables, on its page and on the batch page: labels, formats and the stages table,
as plain functions of the run's view (ui/run_view.py draws them). Values read back from Temporal are not trusted:
`model_label` and `fmt_metric` escape them for markdown; the plain-text ones are for dataframes and charts, which
escape what they show themselves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

import pandas as pd

from ml.catalog import MODELS
from orchestration.contracts import STAGE_LABELS
from orchestration.views import RunView
from ui.text import md

if TYPE_CHECKING:
    from core.datasets import DatasetInfo

# (Material icon, badge colour) per status: icons render everywhere, unlike emoji on font-poor machines
BadgeColor = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray", "grey", "primary"]
STATUS_STYLE: dict[str, tuple[str | None, BadgeColor]] = {
    "running": (":material/sync:", "blue"),
    "completed": (":material/check_circle:", "green"),
    "failed": (":material/error:", "red"),
    "cancelled": (":material/stop_circle:", "gray"),
    "terminated": (":material/stop_circle:", "gray"),
    "timed_out": (":material/timer_off:", "orange"),
}
STAGE_ICONS = {"pending": "·", "running": "▶", "done": "✓", "skipped": "–", "failed": "✗", "cancelled": "■"}
# the stage card's value: short enough for the card at any width the page lays columns out in
STAGE_CARD = {
    "load": "Load data",
    "preprocess": "Preprocess",
    "cv": "Cross-validation",
    "fit": "Fit",
    "evaluate": "Evaluate",
    "save": "Save",
    "done": "Finished",
}


# the results caption: each fact a run records, as a user reads it (a label, and how to show the value)
FACTS = {
    "used_rows": ("rows used", "{:,}"),
    "train_rows": ("training rows", "{:,}"),
    "test_rows": ("test rows", "{:,}"),
    "fit_seconds": ("fit time", "{:.1f} s"),
    "cpu_seconds": ("CPU time", "{:.1f} s"),
    "peak_rss_mb": ("peak memory", "{:.0f} MB"),
    "model_version": ("model version", "v{}"),
}
CLOSED_EARLY = ("cancelled", "failed", "terminated", "timed_out")  # a run whose later stages never ran


def dataset_names(known: Mapping[str, str], stored: Iterable[DatasetInfo]) -> dict[str, str]:
    """Dataset id -> the name the run and batch pages give it: a stored dataset's name, and a deleted one's (the
    registry still knows it, `known`) marked so, on the runs that used it."""
    return {i: f"{n} (deleted)" for i, n in known.items()} | {d.dataset_id: d.name for d in stored}


def dataset_text(dataset_names: dict[str, str], dataset_id: object) -> str:
    """Plain text: the dataset's name (a deleted one's marked so by the page), else "a deleted dataset"."""
    name = dataset_names.get(str(dataset_id))
    return name if name else f"a deleted dataset (id {str(dataset_id)[:8]})" if dataset_id else "…"


def param_text(model: object, name: str, value: object) -> str:
    """A parameter's value as the form names it: 0 for max_depth is "0 (unlimited)"."""
    spec = MODELS.get(model) if isinstance(model, str) else None
    param = next((p for p in spec.params if p.name == name), None) if spec else None
    if param is not None and param.none_label and value == 0:
        return f"0 ({param.none_label})"
    return str(value)


def fact_text(name: str, value: object) -> str:
    label, fmt = FACTS.get(name, (name.replace("_", " "), "{}"))
    try:
        return f"{label}: {fmt.format(value)}"
    except (TypeError, ValueError):
        return f"{label}: {value}"


def stage_rows(view: RunView) -> pd.DataFrame:
    """The stages table: a stage not run has empty cells, and after a cancel or a failure the stages that
    never started say "not run" (not "pending": nothing will run them)."""
    closed_early = view.status in CLOSED_EARLY
    rows: list[dict[str, object]] = []
    for s in view.stages:
        never = closed_early and s.status == "pending"
        rows.append(
            {
                "stage": STAGE_LABELS[s.name],
                "status": "– not run" if never else f"{STAGE_ICONS.get(s.status, '·')} {s.status}",
                "seconds": float("nan") if s.seconds is None else round(s.seconds, 2),
            }
        )
    stages = pd.DataFrame(rows, columns=["stage", "status", "seconds"])
    # one type per column (Arrow cannot hold ints and None/strings together): 0 = not run, shown empty
    attempts = [s.attempt if isinstance(s.attempt, int) and s.attempt > 0 else None for s in view.stages]
    stages["attempt"] = pd.array(attempts, dtype="Int64")
    return stages


def model_name(key: object) -> str:
    """Plain text (dataframes, CSV, charts, which escape it themselves): the catalog label of a known
    model key, else the key as it is."""
    return MODELS[key].label if isinstance(key, str) and key in MODELS else str(key)


def model_label(key: object) -> str:
    """Markdown-safe: the catalog label of a known model key (constant, plain text), else the key
    escaped, so a planted search attribute cannot draw headings, colours or links."""
    return MODELS[key].label if isinstance(key, str) and key in MODELS else md(key)


def worker_wait_text(view: RunView) -> str:
    """Why a running run does not move: no worker is picking it up. One that had started goes on from its last
    finished stage when a worker runs again; one that had not starts then."""
    if view.started:
        return (
            "Waiting for a worker: no worker process is picking up this run right now. It continues where it "
            "was as soon as a worker is running again (`make run` starts them)."
        )
    return (
        "Waiting for a worker: no worker process is picking up this run right now. "
        "It will start as soon as one is running (`make run` starts them)."
    )


def fmt_metric(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else md(value)


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def fmt_left(s: float | None) -> str:
    """Short enough for its card at any width ("a moment" read "a mom…" in the narrow one)."""
    if s is None:
        return "–"
    return "< 1 s" if s < 1 else f"~{fmt_seconds(s)}"


def frozen_label(label: str, frozen: bool) -> str:
    """A live number's label; while it is only what was last read (the page's "As of" line says when), says so."""
    return f"{label} (when last read)" if frozen else label
