"""ui.run_text's tables and captions (drawn by ui.run_view) read as a person reads them: no "None" cells, "not run" for stages a
cancel or failure left, parameters as the form names them, facts with units, metric names as on the cards,
and a deleted dataset by its name."""

from __future__ import annotations

import pytest

from orchestration.contracts import StageProgress
from orchestration.views import RunView
from ui.run_text import dataset_text, fact_text, param_text, stage_rows


def _view(status: str, stages: list[StageProgress]) -> RunView:
    return RunView("train-alice-" + "a" * 32, status, "random_forest_classifier", "d", "y", None, 1.0, "fit", 50.0, stages)


STAGES = [
    StageProgress("load", "done", seconds=0.5, attempt=1),
    StageProgress("preprocess", "done", seconds=0.2, attempt=1),
    StageProgress("cv", "skipped"),
    StageProgress("fit", "cancelled", seconds=3.0, attempt=1),
    StageProgress("evaluate"),
    StageProgress("save"),
]


def test_stages_after_a_cancel_say_not_run_and_have_empty_cells():
    table = stage_rows(_view("cancelled", STAGES))
    assert list(table["status"]) == ["✓ done", "✓ done", "– skipped", "■ cancelled", "– not run", "– not run"]
    assert table["seconds"].isna().sum() == 3 and table["attempt"].isna().sum() == 3  # drawn empty (placeholder)
    assert stage_rows(_view("running", STAGES))["status"].iloc[-1] == "· pending"  # still to come while running


def test_a_zero_that_means_unlimited_says_so():
    assert param_text("random_forest_classifier", "max_depth", 0) == "0 (unlimited)"
    assert param_text("random_forest_classifier", "max_depth", 7) == "7"
    assert param_text("random_forest_classifier", "n_estimators", 0) == "0"  # no such meaning for trees
    assert param_text("<planted>", "max_depth", 0) == "0"


def test_the_results_facts_have_labels_and_units():
    assert fact_text("used_rows", 1200) == "rows used: 1,200"
    assert fact_text("fit_seconds", 2.345) == "fit time: 2.3 s"
    assert fact_text("peak_rss_mb", 181.4) == "peak memory: 181 MB"
    assert fact_text("model_version", 3) == "model version: v3"
    assert fact_text("fit_seconds", "hostile") == "fit time: hostile"  # never a crash on a planted value


def test_a_deleted_dataset_is_named_not_shown_as_its_id():
    assert dataset_text({"2d374580077cc98a": "sales.csv (deleted)"}, "2d374580077cc98a") == "sales.csv (deleted)"
    assert dataset_text({}, "2d374580077cc98a") == "a deleted dataset (id 2d374580)"


def _finished_page() -> None:
    from orchestration.contracts import RunFacts, StageProgress, TrainRequest
    from orchestration.views import RunView
    from ui.run_view import _draw_request, _draw_results, _draw_status

    view = RunView(
        "train-alice-" + "a" * 32,
        "cancelled",
        "random_forest_classifier",
        "2d374580077cc98a",
        "bought",
        None,
        4.0,
        "fit",
        50.0,
        [StageProgress("load", "done", seconds=0.5, attempt=1), StageProgress("fit", "cancelled"), StageProgress("save")],
        facts=RunFacts(used_rows=1200, fit_seconds=2.5, peak_rss_mb=181.4, cv={"balanced_accuracy": {"mean": 0.8, "std": 0.01}}),
        metrics={"balanced_accuracy": 0.8, "f1_macro": 0.7},
        request=TrainRequest("alice", "2d374580077cc98a", "bought", "random_forest_classifier", {"max_depth": 0}),
    )
    names = {"2d374580077cc98a": "sales.csv (deleted)"}
    _draw_status(view, names)
    _draw_request(view, names)
    _draw_results(view, None)


def test_the_run_page_reads_as_plain_words():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_finished_page, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "sales.csv (deleted)" in captions.replace("\\", "") and "2d374580077cc98a" not in captions
    assert "rows used: 1,200" in captions.replace("\\", "") and "used_rows" not in captions
    assert "fit time: 2.5 s" in captions.replace("\\", "") and "peak memory: 181 MB" in captions.replace("\\", "")
    assert [m.label for m in at.metric if m.label not in ("Stage", "Elapsed", "Stage time left", "Attempts")] == [
        "balanced accuracy",
        "F1 \\(macro\\)",
    ]
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    assert list(tables[("metric", "mean", "± std")]["metric"]) == ["balanced accuracy"]
    assert list(tables[("parameter", "value")]["value"]) == ["0 (unlimited)"]
    stages = tables[("stage", "status", "seconds", "attempt")]
    assert list(stages["status"]) == ["✓ done", "■ cancelled", "– not run"]
    shown = next(d for d in at.dataframe if "attempt" in d.value.columns)
    assert shown.proto.placeholder == ""  # a stage not run: empty cells, not "None"


@pytest.mark.parametrize(("seconds", "text"), [(None, "–"), (0.4, "< 1 s"), (12.34, "~12.3 s"), (600, "~10.0 min")])
def test_time_left_is_short_enough_for_its_card(seconds, text):
    from ui.run_text import fmt_left

    assert fmt_left(seconds) == text and len(text) <= 9  # "a moment" was cut to "a mom…" in the narrow card
