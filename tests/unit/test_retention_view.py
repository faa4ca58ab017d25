"""The retention preview's rows: what each version is, what it was trained on, its score and its age."""

from __future__ import annotations

from datetime import UTC, datetime

from core.model_record import ModelRecord
from ui.retention import age_text, best_at_risk, preview_rows

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_age_is_given_in_the_largest_whole_unit():
    assert age_text("2025-06-01T11:59:20+00:00", NOW) == "40 s"
    assert age_text("2025-06-01T11:48:00+00:00", NOW) == "12 min"
    assert age_text("2025-06-01T07:00:00+00:00", NOW) == "5 h"
    assert age_text("2025-05-29T12:00:00+00:00", NOW) == "3 days"
    assert age_text("2025-06-01T12:00:05", NOW) == "0 s"  # no zone: read as UTC; never negative
    assert age_text("yesterday", NOW) == "?"


def test_a_preview_row_names_the_version_its_dataset_target_metric_and_age():
    card = {"task": "regression", "dataset": {"id": "d1", "name": "**big**.csv"}, "metrics": {"r2": 0.912345}}
    record = ModelRecord(7, "alice", "ridge", 3, "r", "2025-06-01T11:00:00+00:00", 4096, (), card, "d1", "price_[eur]", "f")
    (row,) = preview_rows((record,), NOW)
    assert row == {
        "model": "ridge",
        "version": 3,
        "dataset": r"\*\*big\*\*\.csv",  # st.table renders Markdown: the user's names are escaped
        "target": r"price\_\[eur\]",
        "metric": "R²",  # the name the metric cards use
        "score": "0.9123",
        "age": "1 h",
        "size": "4.0 KB",
        "note": "",
    }


def test_a_version_that_is_the_best_of_its_lineage_is_flagged_before_it_goes():
    """Keep the last 1 by recency would delete v2, the best score (0.867) of its lineage: the row says so."""

    def version(i: int, score: float) -> ModelRecord:
        card = {"task": "classification", "dataset": {"id": "d1", "name": "shop.csv"}, "metrics": {"balanced_accuracy": score}}
        return ModelRecord(i, "alice", "rf", i, f"r{i}", "2025-06-01T11:00:00+00:00", 4096, (), card, "d1", "bought", "f")

    v1, v2, v3 = version(1, 0.70), version(2, 0.867), version(3, 0.75)
    rows = preview_rows((v2, v1), NOW, best_at_risk([v3, v2, v1], (v2, v1)))
    assert [r["note"] for r in rows] == ["best score: 0.867 — will be deleted", ""]
    # the best score stays when a kept version matches it: nothing is lost, nothing flagged
    tie = version(4, 0.867)
    assert best_at_risk([tie, v3, v2, v1], (v2, v1)) == set()
    assert best_at_risk([v3, v2, v1], (v1,)) == set()  # not the best
