"""ui.charts reads right: class labels as categories, every feature labelled, legends beside the plot,
"0 = unlimited" drawn as the most, and parameters of choices kept as axes of their own."""

from __future__ import annotations

import pytest

from orchestration.evaluation_view import ClassCurve, Evaluation, FeatureImportance, RocCurve
from ui import charts
from ui.batch_view import zero_means


def test_numeric_class_labels_give_category_axes():
    fig = charts.confusion(Evaluation(labels=["0", "1"], confusion=[[5, 1], [2, 7]]))  # str(label), as evaluated
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.type == "category"
    assert list(fig.data[0].x) == ["0", "1"] and fig.layout.yaxis.autorange == "reversed"


def _features(n: int) -> list[FeatureImportance]:
    return [FeatureImportance(f"f{i:02d}", 1.0 / (i + 1), 0.01) for i in range(n)]


def test_twenty_features_are_all_labelled_one_tick_each():
    fig = charts.importance(_features(20))
    assert list(fig.data[0].y) == [f"f{i:02d}" for i in range(20)]
    assert fig.layout.yaxis.type == "category" and fig.layout.yaxis.tickmode == "linear" and fig.layout.yaxis.dtick == 1
    assert fig.layout.height >= 20 * charts.BAR_PX  # room for a line per label: Plotly skips none


def test_past_twenty_features_the_rest_share_one_others_bar():
    items = _features(31)
    fig = charts.importance(list(reversed(items)))  # ranked by the chart itself
    names = list(fig.data[0].y)
    assert names[:19] == [f"f{i:02d}" for i in range(19)]
    assert names[19] == "others (12 features)" and len(names) == charts.IMPORTANCE_BARS
    assert fig.data[0].x[19] == pytest.approx(sum(i.importance for i in items[19:]))


def test_a_numeric_feature_name_is_still_a_label():
    fig = charts.importance([FeatureImportance("2019", 0.3, 0.0), FeatureImportance("2020", 0.1, 0.0)])
    assert fig.layout.yaxis.type == "category"


@pytest.mark.parametrize(
    "fig",
    [
        charts.curves_by_metric([(f"max_depth={d}", {"steps": [1, 2], "valid": [0.5, 0.6], "metric": "acc"}) for d in range(12)])[
            0
        ],
        charts.roc(Evaluation(roc=[RocCurve(c, [0, 1], [0, 1], auc=0.5) for c in "abcdefgh"])),
        charts.precision_recall(Evaluation(pr=[ClassCurve(c, [0, 1], [1, 0]) for c in "abcdefgh"])),
        charts.learning_curve({"steps": [1, 2], "train": [0.1, 0.2], "valid": [0.3, 0.4]}),
    ],
    ids=["sweep curves", "roc", "precision-recall", "learning curve"],
)
def test_legends_sit_right_of_the_plot_area(fig):
    legend = fig.layout.legend
    assert legend.orientation == "v" and legend.x >= 1 and legend.xanchor == "left"  # the plot area ends at x = 1


def _sweep(values: dict[str, list]) -> list[dict]:
    n = len(next(iter(values.values())))
    return [{"params": {k: v[i] for k, v in values.items()}, "acc": 0.5 + i / 10} for i in range(n)]


def test_zero_meaning_unlimited_is_drawn_above_the_largest_depth():
    rows = _sweep({"max_depth": [5, 0, 20, 10]})
    fig = charts.parallel_coordinates(rows, ["max_depth"], "acc", {"max_depth": "unlimited"})
    assert fig is not None
    (depth, score) = fig.data[0].dimensions
    values = list(depth.values)
    assert values[1] > max(values[0], values[2], values[3])  # unlimited is the deepest
    assert list(depth.ticktext) == ["5", "10", "20", "unlimited"] and depth.tickvals[-1] == values[1]
    assert depth.range[1] == values[1] and list(score.values) == [r["acc"] for r in rows]


def test_zero_without_a_meaning_stays_zero():
    fig = charts.parallel_coordinates(_sweep({"alpha": [0, 1.5]}), ["alpha"], "acc")
    assert fig is not None
    (dim, _) = fig.data[0].dimensions
    assert list(dim.values) == [0, 1.5] and dim.ticktext is None


def test_parameters_of_choices_keep_their_axes_with_their_names():
    rows = _sweep(
        {"criterion": ["gini", "entropy", "gini"], "bootstrap": [True, False, True], "<b>x</b>": ["<i>a</i>", "b", "b"]}
    )
    fig = charts.parallel_coordinates(rows, ["criterion", "bootstrap", "<b>x</b>"], "acc")
    assert fig is not None
    criterion, bootstrap, hostile, score = fig.data[0].dimensions
    assert list(criterion.values) == [0, 1, 0] and list(criterion.ticktext) == ["gini", "entropy"]
    assert list(criterion.tickvals) == [0, 1] and list(criterion.range) == [-0.5, 1.5]
    assert list(bootstrap.ticktext) == ["True", "False"]
    assert hostile.label == "&lt;b&gt;x&lt;/b&gt;" and list(hostile.ticktext) == ["&lt;i&gt;a&lt;/i&gt;", "b"]
    assert score.label == "acc"


def test_the_batch_view_knows_which_parameters_mean_unlimited_at_zero():
    assert zero_means("random_forest_classifier") == {"max_depth": "unlimited"}
    assert zero_means("logistic_regression") == {} and zero_means("<not a model>") == {}


def test_bars_are_one_per_run_even_when_two_runs_share_a_label():
    """Logistic regression twice in a batch (0.31 and 0.33) never adds up to one 0.64 bar."""
    fig = charts.metric_bars([("Logistic regression", 0.31), ("Logistic regression", 0.33), ("3", 0.5), ("4", 0.6)], "acc")
    bars = fig.data[0]
    assert len(fig.data) == 1 and list(bars.y) == [0.31, 0.33, 0.5, 0.6]
    assert len(set(bars.x)) == len(bars.x) == 4  # a label per bar: nothing stacks or overlaps
    assert fig.layout.xaxis.type == "category"  # "3" and "4" are names, not positions on a number line
    assert fig.layout.barmode in (None, "group")


def test_learning_curves_of_different_metrics_get_charts_of_their_own():
    """An MLP's falling training loss never shares a y-axis with accuracy curves."""
    figs = charts.curves_by_metric(
        [
            ("Random forest", {"metric": "accuracy", "steps": [1, 2], "train": [0.9, 1.0], "valid": [0.7, 0.8]}),
            ("Gradient boosting", {"metric": "accuracy", "steps": [1, 2], "train": [0.8, 0.9], "valid": [0.75, 0.8]}),
            ("Neural network", {"metric": "training loss", "steps": [1, 2, 3], "train": [0.9, 0.5, 0.3], "valid": []}),
            ("Logistic regression", {"metric": "accuracy", "steps": [], "train": [], "valid": []}),  # nothing to draw
        ]
    )
    assert [f.layout.title.text for f in figs] == ["Learning curves: accuracy", "Learning curves: training loss"]
    assert [t.name for t in figs[0].data] == ["Random forest", "Gradient boosting"]
    assert [t.name for t in figs[1].data] == ["Neural network"] and figs[1].layout.yaxis.title.text == "training loss"


def test_a_curve_names_what_its_model_counts_and_what_its_points_score():
    assert charts.size_axis("random_forest_classifier") == "trees"
    assert charts.size_axis("hist_gradient_boosting_regressor") == "iterations"
    assert charts.size_axis("mlp_classifier") == "epochs"
    assert charts.size_axis("no_such_model") == charts.size_axis(None) == charts.SIZES
    curve = {"steps": [1, 2], "train": [0.1, 0.2], "metric": "acc"}
    fig = charts.learning_curve(curve, charts.size_axis("random_forest_classifier"))
    assert fig is not None and fig.layout.xaxis.title.text == "trees"
    said = charts.curve_rows_text({"rows": [2000, 1500]})
    assert said == "Each point is scored on 2,000 training and 1,500 held-out rows; the test-set metrics on every held-out row."
    for planted in ({}, {"rows": [5]}, {"rows": ["x", 1]}, {"rows": [True, 2]}, {"rows": "2000"}):
        assert charts.curve_rows_text(planted) is None  # a curve from before it said, or planted: no caption


def test_a_single_curve_among_runs_still_names_its_run():
    (fig,) = charts.curves_by_metric([("Random forest", {"steps": [1, 2], "valid": [0.5, 0.6], "metric": "accuracy"})])
    assert fig.layout.showlegend is True and fig.data[0].name == "Random forest"
