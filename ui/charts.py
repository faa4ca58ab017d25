"""Plotly figures for runs and models: pure functions from small data to figures (easy to test).

Plotly renders a subset of HTML in every text it draws (tick labels, legends, hover labels, titles:
<a href>, <b>, <br>, ...), so each label that comes from users (column names, class labels, model
labels, sweep parameters, metric names read back from a workflow) goes through `_esc` first: `<`, `>`
and `&` become entities, which Plotly shows as the literal characters.
"""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go

from orchestration.evaluation_view import Evaluation, FeatureImportance
from ui.labels import unique

# the legend to the right of the plot area, never over it (it scrolls when it is taller than the plot)
LEGEND = dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top")
HEIGHT = 340
LAYOUT = dict(height=HEIGHT, margin=dict(l=10, r=10, t=40, b=10), legend=LEGEND)
SIZES = "size (trees / iterations / epochs)"  # a curve's x axis, unless its model says which
# what a model family's curve counts along its x axis (ml/catalog.py `family`)
SIZE_BY_FAMILY = {"forest": "trees", "boosting": "iterations", "hist": "iterations", "mlp": "epochs"}
IMPORTANCE_BARS = 20  # bars of the importance chart: the top features, then one "others" bar for the rest
BAR_PX = 24  # height per bar: every label gets its own line instead of Plotly skipping every other one


def _esc(value: Any) -> Any:
    """Text as Plotly should show it literally; numbers and other values unchanged (they stay numeric).
    No quote escaping: Plotly knows &lt; &gt; &amp; and numeric entities, not &quot;."""
    return html.escape(value, quote=False) if isinstance(value, str) else value


def _escs(values: list[Any]) -> list[Any]:
    return [_esc(v) for v in values]


def _fig(title: str, **axes: Any) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, **LAYOUT, **axes)
    return fig


def size_axis(model: object) -> str:
    """A learning curve's x axis, named for what the model counts ("trees"); the generic name for one unknown."""
    from ml.catalog import MODELS

    spec = MODELS.get(model) if isinstance(model, str) else None
    return SIZE_BY_FAMILY.get(spec.family, SIZES) if spec else SIZES


def curve_rows_text(curve: dict[str, Any]) -> str | None:
    """What a curve's points are scored on, when it says (curves from before it did, or planted, say nothing)."""
    rows = curve.get("rows")
    if not (isinstance(rows, list) and len(rows) == 2 and all(isinstance(n, int) and not isinstance(n, bool) for n in rows)):
        return None
    scored = f"Each point is scored on {rows[0]:,} training and {rows[1]:,} held-out rows"
    return f"{scored}; the test-set metrics on every held-out row."


def learning_curve(curve: dict[str, Any], x_title: str = SIZES) -> go.Figure | None:
    if not curve.get("steps"):
        return None
    fig = _fig(f"Learning curve ({_esc(str(curve.get('metric', 'score')))})", xaxis_title=x_title)
    fig.add_scatter(x=curve["steps"], y=curve["train"], mode="lines+markers", name="training")
    if curve.get("valid"):
        fig.add_scatter(x=curve["steps"][: len(curve["valid"])], y=curve["valid"], mode="lines+markers", name="held-out")
    return fig


def stage_times(stages: list[tuple[str, float]]) -> go.Figure:
    fig = _fig("Time per stage (s)", yaxis=dict(autorange="reversed"))
    fig.update_layout(height=260)
    fig.add_bar(x=[s for _, s in stages], y=[_esc(n) for n, _ in stages], orientation="h", marker_color="#4C78A8")
    return fig


def confusion(ev: Evaluation) -> go.Figure:
    """Class labels are categories, even numeric ones (0 and 1): one tick per class, no -0.5 ... 1.5 scale."""
    labels = _escs(ev.labels)
    fig = _fig(
        "Confusion matrix",
        xaxis=dict(title="predicted", type="category"),
        yaxis=dict(title="actual", type="category", autorange="reversed"),
    )
    fig.add_heatmap(
        z=ev.confusion, x=labels, y=labels, colorscale="Blues", text=ev.confusion, texttemplate="%{text}", showscale=False
    )
    return fig


def roc(ev: Evaluation) -> go.Figure:
    fig = _fig("ROC curve", xaxis_title="false positive rate", yaxis_title="true positive rate")
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="chance")
    for c in ev.roc:
        fig.add_scatter(x=c.x, y=c.y, mode="lines", name=f"{_esc(str(c.label))} (AUC {c.auc:.3f})")
    return fig


def precision_recall(ev: Evaluation) -> go.Figure:
    fig = _fig("Precision-recall curve", xaxis_title="recall", yaxis_title="precision")
    for c in ev.pr:
        fig.add_scatter(x=c.x, y=c.y, mode="lines", name=_esc(str(c.label)))
    return fig


def predicted_vs_actual(ev: Evaluation) -> go.Figure:
    lo, hi = min(ev.actual + ev.predicted), max(ev.actual + ev.predicted)
    fig = _fig("Predicted vs actual", xaxis_title="actual", yaxis_title="predicted")
    fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dot", color="grey"), name="perfect")
    fig.add_scatter(x=ev.actual, y=ev.predicted, mode="markers", marker=dict(size=5, opacity=0.6), name="test rows")
    return fig


def residuals(ev: Evaluation) -> go.Figure:
    res = [p - a for a, p in zip(ev.actual, ev.predicted)]
    fig = _fig("Residuals", xaxis_title="predicted", yaxis_title="predicted − actual")
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.add_scatter(x=ev.predicted, y=res, mode="markers", marker=dict(size=5, opacity=0.6), name="test rows")
    return fig


def importance(items: list[FeatureImportance], bars: int = IMPORTANCE_BARS) -> go.Figure:
    """One labelled bar per feature, most important first; past `bars`, the rest share one "others" bar
    (their importances summed). The chart grows with the bars, so no label is skipped."""
    ranked = sorted(items, key=lambda i: -i.importance)
    shown, rest = (ranked, []) if len(ranked) <= bars else (ranked[: bars - 1], ranked[bars - 1 :])
    names = [_esc(str(i.feature)) for i in shown]
    values = [i.importance for i in shown]
    errors = [i.std for i in shown]
    if rest:
        names.append(f"others ({len(rest)} features)")
        values.append(sum(i.importance for i in rest))
        errors.append(0.0)
    fig = _fig(
        "Feature importance (permutation, held-out rows)",
        yaxis=dict(type="category", autorange="reversed", tickmode="linear", dtick=1, automargin=True),
    )
    fig.update_layout(height=max(HEIGHT, 90 + BAR_PX * len(names)))
    fig.add_bar(x=values, y=names, orientation="h", error_x=dict(type="data", array=errors), marker_color="#72B7B2")
    return fig


def metric_bars(rows: list[tuple[str, float]], metric: str) -> go.Figure:
    """One bar per run, never two on one label: a repeated label is numbered ("x (2)") so Plotly cannot
    draw two runs' scores as one bar; the labels are categories, even when they look like numbers."""
    fig = _fig(f"{_esc(metric)} by model", yaxis_title=_esc(metric), xaxis=dict(type="category"))
    fig.add_bar(x=[_esc(label) for label in unique(r[0] for r in rows)], y=[r[1] for r in rows], marker_color="#4C78A8")
    return fig


def curves_by_metric(curves: list[tuple[str, dict[str, Any]]]) -> list[go.Figure]:
    """Held-out (or training) curves of several runs: one chart per metric, so a falling training loss
    never shares an axis with rising accuracies. Each run's curve is named by its (unique) label."""
    drawn: dict[str, list[tuple[str, list, list]]] = {}
    for label, c in zip(unique(label for label, _ in curves), (c for _, c in curves)):
        if not c.get("steps"):
            continue
        held_out = bool(c.get("valid"))
        ys = c.get("valid") or c.get("train") or []
        metric = str(c.get("metric") or "score")
        key = metric if held_out else f"{metric} (training rows)" if metric != "training loss" else metric
        drawn.setdefault(key, []).append((label, c["steps"][: len(ys)], ys))
    figures = []
    for metric, lines in drawn.items():
        fig = _fig(f"Learning curves: {_esc(metric)}", xaxis_title=SIZES, yaxis_title=_esc(metric), showlegend=True)
        for label, xs, ys in lines:
            fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=_esc(str(label)))
        figures.append(fig)
    return figures


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _tick(v: float) -> str:
    return f"{v:g}"


def _numeric_axis(label: str, values: list[float], zero_means: str | None) -> dict[str, Any]:
    """A numeric parameter. When 0 stands for "no limit" (`zero_means`, e.g. max_depth), 0 is drawn
    above the largest real value and labelled so: unlimited is the most, not the least."""
    if zero_means is None or 0 not in values:
        return dict(label=label, values=values)
    real = sorted({v for v in values if v != 0})
    top = real[-1] + max(1.0, (real[-1] - real[0]) / 3) if real else 1.0  # a clear step above the largest
    return dict(
        label=label,
        values=[top if v == 0 else v for v in values],
        range=[real[0] if real else 0.0, top],
        tickvals=[*real, top],
        ticktext=[*map(_tick, real), _esc(zero_means)],
    )


def _category_axis(label: str, values: list[Any]) -> dict[str, Any]:
    """A parameter of choices (a kernel, a criterion, true/false): one tick per choice, in the order met."""
    choices = list(dict.fromkeys(map(str, values)))
    position = {c: i for i, c in enumerate(choices)}
    return dict(
        label=label,
        values=[position[str(v)] for v in values],
        range=[-0.5, len(choices) - 0.5],
        tickvals=list(range(len(choices))),
        ticktext=_escs(choices),
    )


def parallel_coordinates(
    rows: list[dict[str, Any]],
    params: list[str],
    metric: str,
    zero_means: dict[str, str] | None = None,
    metric_label: str | None = None,
) -> go.Figure | None:
    """Sweep results: one line per trial through its parameters (numeric or choices) to its score
    (`metric` in each row, named `metric_label` on its axis). `zero_means` names the parameters whose 0
    means "no limit", with the word to show for it."""
    if not rows or not params:
        return None
    dims = []
    for p in params:
        values = [r["params"].get(p) for r in rows]
        if all(_is_number(v) for v in values):
            dims.append(_numeric_axis(_esc(p), values, (zero_means or {}).get(p)))
        else:
            dims.append(_category_axis(_esc(p), values))
    scores = [r[metric] for r in rows]
    dims.append(dict(label=_esc(metric_label or metric), values=scores))
    fig = go.Figure(go.Parcoords(line=dict(color=scores, colorscale="Viridis", showscale=True), dimensions=dims))
    fig.update_layout(title="Parameters vs score", **{**LAYOUT, "margin": dict(l=90, r=40, t=90, b=20)})
    return fig
