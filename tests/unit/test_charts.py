"""ui.charts: user-supplied labels (column names, class labels, model labels, sweep parameters) reach
Plotly escaped, so Plotly's HTML subset (<a href>, <b>, <br>, ...) cannot render from them."""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go
import pytest

from orchestration.evaluation_view import ClassCurve, Evaluation, FeatureImportance, RocCurve
from ui import charts

LINK = '<a href="https://evil.example/phish">x</a>'
BOLD = "<b>x</b>"
HOSTILE = [LINK, BOLD, "<br>line", "a & b <i>"]


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (path, string) in a figure's data and layout, however deeply nested."""
    if isinstance(node, str):
        return [(path, node)]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(node, (list, tuple)):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{path}[{i}]")]
    if hasattr(node, "tolist"):
        return _strings(node.tolist(), path)
    return []


def _assert_no_markup(fig: go.Figure) -> list[str]:
    spec = fig.to_plotly_json()
    layout = {k: v for k, v in spec["layout"].items() if k != "template"}
    found = _strings(spec["data"], "data") + _strings(layout, "layout")
    raw = [(p, s) for p, s in found if "<" in s or ">" in s]
    assert not raw, raw
    return [s for _, s in found]


def _escaped(label: str) -> str:
    return html.escape(label, quote=False)


def _classification_ev() -> Evaluation:
    labels = HOSTILE[:3]
    return Evaluation(
        labels=labels,
        confusion=[[3, 1, 0], [0, 4, 1], [1, 0, 5]],
        roc=[RocCurve(lab, [0, 0.5, 1], [0, 0.8, 1], auc=0.8) for lab in labels],
        pr=[ClassCurve(lab, [0, 0.5, 1], [1, 0.7, 0.5]) for lab in labels],
    )


FIGURES = {
    "importance": lambda: charts.importance([FeatureImportance(lab, 0.1 * i, 0.01) for i, lab in enumerate(HOSTILE)]),
    "confusion": lambda: charts.confusion(_classification_ev()),
    "roc": lambda: charts.roc(_classification_ev()),
    "precision_recall": lambda: charts.precision_recall(_classification_ev()),
    "metric_bars": lambda: charts.metric_bars([(lab, 0.5) for lab in HOSTILE], "<b>f1</b>"),
    "curves_by_metric": lambda: charts.curves_by_metric(
        [(lab, {"steps": [1, 2], "train": [0.1, 0.2], "valid": [0.3, 0.4], "metric": "<i>m</i>"}) for lab in HOSTILE]
    )[0],
    "learning_curve": lambda: charts.learning_curve({"steps": [1, 2], "train": [0.1, 0.2], "valid": [0.3], "metric": BOLD}),
    "stage_times": lambda: charts.stage_times([(lab, 1.0) for lab in HOSTILE]),
    "parallel_coordinates": lambda: charts.parallel_coordinates(
        [{"params": {LINK: 1, BOLD: 2.5}, "<b>acc</b>": 0.9}, {"params": {LINK: 3, BOLD: 0.5}, "<b>acc</b>": 0.7}],
        [LINK, BOLD],
        "<b>acc</b>",
    ),
}


@pytest.mark.parametrize("name", FIGURES)
def test_hostile_labels_are_escaped_in_every_field(name):
    fig = FIGURES[name]()
    assert fig is not None
    strings = _assert_no_markup(fig)
    assert any("&lt;" in s for s in strings), "the labels are still there, escaped"


def test_importance_shows_the_column_names_literally():
    fig = charts.importance([FeatureImportance(lab, 0.5, 0.1) for lab in HOSTILE])
    assert list(fig.data[0].y) == [_escaped(lab) for lab in HOSTILE]
    assert fig.data[0].y[0] == '&lt;a href="https://evil.example/phish"&gt;x&lt;/a&gt;'
    assert fig.data[0].y[3] == "a &amp; b &lt;i&gt;"  # & itself escaped: Plotly shows "a & b <i>"


def test_confusion_ticks_and_legends():
    ev = _classification_ev()
    fig = charts.confusion(ev)
    assert list(fig.data[0].x) == list(fig.data[0].y) == [_escaped(lab) for lab in ev.labels]
    assert charts.roc(ev).data[1].name == '&lt;a href="https://evil.example/phish"&gt;x&lt;/a&gt; (AUC 0.800)'
    assert [t.name for t in charts.precision_recall(ev).data][1] == "&lt;b&gt;x&lt;/b&gt;"


def test_numeric_class_labels_are_shown_as_they_are():
    fig = charts.confusion(Evaluation(labels=["0", "1"], confusion=[[1, 0], [0, 1]]))
    assert list(fig.data[0].x) == ["0", "1"]
