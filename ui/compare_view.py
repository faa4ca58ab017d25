"""Compare on the Models page: only models that can be compared (same task; by default the same dataset and
target), and only the scores every one of them has, so the table never holds an empty cell."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.model_record import ModelRecord
from orchestration.contracts import PRIMARY_METRIC
from ui import charts
from ui.labels import dataset_key, dataset_labels, metric_name, model_labels

COSTS = {"fit_seconds": "fit time (s)", "cpu_seconds": "CPU time (s)", "peak_rss_mb": "peak memory (MB)"}  # ModelRecord.costs
TASK_WORDS = {"classification": "classification", "regression": "regression"}


@dataclass(frozen=True)
class Group:
    """Models that can be compared with one another, newest first."""

    key: str  # stable across reruns and new models: part of the widget key
    label: str
    task: str
    members: tuple[ModelRecord, ...]
    any_dataset: bool = False  # the group of a task's models on every dataset: members are named with theirs


def _key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:12]


def comparable_groups(models: list[ModelRecord], uploaded: Mapping[str, str] | None = None) -> list[Group]:
    """One group per (task, dataset, target), the group of the newest model first; then, for a task whose
    models were trained on several datasets or targets, one group of all of them (same task, same scores).
    Two uploads of the same name are told apart (`uploaded`: dataset id -> upload time, when stored)."""
    names = dataset_labels(models, uploaded)
    by_data: dict[tuple[str, str, str], list[ModelRecord]] = {}
    for m in models:  # newest first, as the registry lists them
        by_data.setdefault((m.task, dataset_key(m), m.target), []).append(m)
    groups = [
        Group(
            _key(task, dataset, target),
            f"{names[dataset_key(ms[0])]} → {target} ({TASK_WORDS.get(task, task)}, {len(ms)} model{'s' * (len(ms) != 1)})",
            task,
            tuple(ms),
        )
        for (task, dataset, target), ms in by_data.items()
    ]
    for task in dict.fromkeys(g.task for g in groups):
        same_task = [g for g in groups if g.task == task]
        if len(same_task) > 1:
            members = tuple(m for m in models if m.task == task)
            groups.append(
                Group(_key(task), f"All {TASK_WORDS.get(task, task)} models, any dataset ({len(members)})", task, members, True)
            )
    return groups


def compare_table(
    chosen: list[ModelRecord], labels: Mapping[int, str] | None = None, uploaded: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One row per model: the scores and costs that every chosen model has (the task's main score first,
    under the names the metric cards use), with the dataset and target when they differ. `labels`: model
    id -> the name it is chosen by (default: unique ones)."""
    labels = labels or model_labels(chosen, uploaded)
    names = dataset_labels(chosen, uploaded)
    metrics = [k for k in chosen[0].metrics if all(k in m.metrics for m in chosen)]
    primary = PRIMARY_METRIC.get(chosen[0].task)
    metrics.sort(key=lambda k: k != primary)
    costs = [k for k in COSTS if all(k in m.costs for m in chosen)]
    varies = len({(dataset_key(m), m.target) for m in chosen}) > 1
    rows = []
    for m in chosen:
        row: dict[str, object] = {"model": labels[m.id]}
        if varies:
            row |= {"dataset": names[dataset_key(m)], "target": m.target}
        row |= {metric_name(k): round(m.metrics[k], 4) for k in metrics}
        row |= {COSTS[k]: m.costs[k] for k in costs}
        rows.append(row)
    return pd.DataFrame(rows)


def show_compare(models: list[ModelRecord], uploaded: Mapping[str, str] | None = None) -> None:
    groups = comparable_groups(models, uploaded)
    by_key = {g.key: g for g in groups}
    group = by_key[
        st.selectbox(
            "Compare",
            list(by_key),
            format_func=lambda k: by_key[k].label,
            key="compare_group",
            help="Models are compared with others of the same task: by default, trained on the same dataset and target.",
        )
    ]
    by_id = {m.id: m for m in group.members}
    # unique names: Streamlit tells a multiselect's options apart by the text they show
    labels = model_labels(group.members, uploaded, with_data=group.any_dataset)
    picked = st.multiselect(
        "Models to compare",
        list(by_id),
        default=list(by_id)[:3],
        key=f"compare_models_{group.key}",
        format_func=labels.__getitem__,
    )
    if not picked:
        return
    chosen = [by_id[i] for i in picked]
    st.dataframe(compare_table(chosen, labels, uploaded), hide_index=True, key="compare_table")
    metric = PRIMARY_METRIC.get(group.task)
    if metric and all(metric in m.metrics for m in chosen):
        st.plotly_chart(
            charts.metric_bars([(labels[m.id], m.metrics[metric]) for m in chosen], metric_name(metric)),
            key="compare_chart",
            width="stretch",
        )
