"""ui.batch_view: every configuration has a label of its own (no bar adds two runs up), the leaderboard
names scores as the metric cards do and leaves a score a model lacks empty, and worker names are for
admins only."""

from __future__ import annotations

import math

import pytest
from streamlit.testing.v1 import AppTest

from orchestration.contracts import ChildState
from ui.batch_view import child_labels, leaderboard_table


def _child(index: int, model: str, params: dict | None = None, **kw) -> ChildState:
    return ChildState(index=index, model=model, params=params or {}, run_id=f"train-alice-{index:032x}", **kw)


def test_the_same_model_twice_gets_two_labels():
    children = [_child(0, "logistic_regression"), _child(1, "gaussian_nb"), _child(2, "logistic_regression")]
    assert child_labels(children, None) == {0: "Logistic regression #1", 1: "Gaussian naive Bayes", 2: "Logistic regression #3"}


def test_a_sweep_trial_drawn_twice_gets_two_labels():
    children = [_child(0, "knn_classifier", {"n_neighbors": 3}), _child(1, "knn_classifier", {"n_neighbors": 3})]
    assert set(child_labels(children, ["n_neighbors"]).values()) == {"n_neighbors=3 #1", "n_neighbors=3 #2"}


def test_the_leaderboard_leaves_missing_scores_empty_and_names_them():
    board = [
        {"rank": 1, "model": "logistic_regression", "params": {}, "balanced_accuracy": 0.9, "roc_auc": 0.95,
         "seconds": 1.0, "worker": "29710@vm", "run_id": "a", "best": True},
        {"rank": 2, "model": "svm_classifier", "params": {}, "balanced_accuracy": 0.8,
         "seconds": 2.0, "worker": "29711@vm", "run_id": "b", "best": False},
    ]  # fmt: skip
    table = leaderboard_table(board, {"a": "Logistic regression", "b": "SVM"})
    assert list(table.columns) == ["", "rank", "configuration", "balanced accuracy", "ROC AUC", "seconds", "run"]
    assert table["ROC AUC"].iloc[0] == 0.95 and math.isnan(table["ROC AUC"].iloc[1])  # drawn empty, not "None"
    assert "worker" in leaderboard_table(board, {"a": "x", "b": "y"}, admin=True).columns


def _page(admin: bool) -> None:
    from core.accounts import User
    from orchestration.contracts import BatchProgress, ChildState
    from orchestration.views import BatchView
    from ui.batch_view import _draw

    def child(i: int, model: str, score: float) -> ChildState:
        return ChildState(
            index=i,
            model=model,
            params={},
            run_id=f"train-alice-{i:032x}",
            status="completed",
            metrics={"balanced_accuracy": score},
            worker="29710@vm",
            seconds=1.0,
            curve={"metric": "training loss" if model == "mlp_classifier" else "accuracy", "steps": [1, 2], "train": [0.5, 0.4]},
        )

    children = [child(0, "logistic_regression", 0.31), child(1, "logistic_regression", 0.33), child(2, "mlp_classifier", 0.5)]
    progress = BatchProgress("batch-alice-" + "c" * 32, "d", "y", "classification", "balanced_accuracy", 2, False, children)
    user = User("alice", roles=("admin",) if admin else ())
    _draw(BatchView("batch-alice-" + "c" * 32, "running", None, 1.0, progress), user, {"d": "shop.csv"})


def test_the_batch_page_draws_one_bar_per_run_one_curve_chart_per_metric_and_no_worker_for_users():
    import json

    at = AppTest.from_function(_page, args=(False,), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    texts = [e.proto.text for e in at.get("progress")]
    assert texts and not any("worker" in t or "29710" in t for t in texts), texts
    assert "3 configurations on **shop\\.csv** → target **y** · at most 2 at once" in at.caption[0].value  # what it trains on
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    bars = next(c for c in charts if c["data"][0]["type"] == "bar")
    assert len(set(bars["data"][0]["x"])) == 3  # the two logistic regressions are two bars
    (board,) = [d for d in at.dataframe if "configuration" in d.value.columns]
    assert board.proto.placeholder == ""  # a score a model lacks is an empty cell, not "None"
    titles = [c["layout"]["title"]["text"] for c in charts if c["data"][0]["type"] == "scatter"]
    assert sorted(titles) == ["Learning curves: accuracy (training rows)", "Learning curves: training loss"]

    admin = AppTest.from_function(_page, args=(True,), default_timeout=30)
    admin.run()
    assert any("worker 29710" in e.proto.text for e in admin.get("progress"))  # for whoever runs the workers


@pytest.mark.parametrize(
    ("status", "phase", "text"),
    [
        ("running", "running", "running"),
        ("running", "awaiting", "running · finished with failures: retry them or finish"),
        ("running", "stopping", "running · stopping"),
        ("running", "[x](http://evil)", "running · unknown phase"),
        ("running", None, "running"),
        ("completed", "done", "completed"),
        ("completed", "cancelled", "completed · cancelled"),
        ("cancelled", "running", "cancelled"),
        ("timed_out", "running", "timed out"),
    ],
)
def test_the_batch_badge_names_the_phase_only_where_it_says_more_than_the_status(status, phase, text):
    from ui.batch_view import badge_text

    assert badge_text(status, phase) == text
