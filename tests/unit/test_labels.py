"""ui.labels: one name per metric, one time format, one size format, and model and dataset names that are
never shared by two different things (Streamlit tells a multiselect's options apart by their text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from core.model_record import ModelRecord
from ui.labels import dataset_labels, metric_name, model_labels, size, unique, when


def record(i: int, name: str, dataset_id: str, dataset: str, target: str = "bought", version: int = 1) -> ModelRecord:
    card = {"task": "classification", "dataset": {"id": dataset_id, "name": dataset}, "target": target, "metrics": {}}
    return ModelRecord(i, "alice", name, version, f"r{i}", "2026-01-01T00:00:00+00:00", 1, (), card, dataset_id, target, "f")


def test_metric_keys_get_the_names_the_metric_cards_show():
    assert [metric_name(k) for k in ("balanced_accuracy", "f1_macro", "roc_auc", "log_loss", "r2", "accuracy")] == [
        "balanced accuracy",
        "F1 (macro)",
        "ROC AUC",
        "log loss",
        "R²",
        "accuracy",
    ]
    assert metric_name("some_new_score") == "some new score"


def test_times_read_as_minutes_in_utc_whatever_they_came_as():
    assert when("2026-11-26T18:02:41+00:00") == "2026-11-26 18:02 UTC"
    assert when("2026-11-26T19:02:41+01:00") == "2026-11-26 18:02 UTC"
    assert when(datetime(2026, 11, 26, 18, 2, tzinfo=UTC)) == "2026-11-26 18:02 UTC"
    assert when(datetime(2026, 11, 26, 20, 2, tzinfo=timezone(timedelta(hours=2)))) == "2026-11-26 18:02 UTC"
    assert when("2026-11-26T18:02:00") == "2026-11-26 18:02 UTC"  # no zone: UTC
    assert when(None) == "" and when("soon") == "soon"


def test_sizes_use_the_largest_unit():
    assert size(9_569.4 * 1024) == "9.3 MB"
    assert size(4096) == "4.0 KB" and size(512) == "0.5 KB" and size(3 * 2**30) == "3.0 GB"


def test_repeated_labels_are_numbered():
    assert unique(["a", "b", "a", "a"]) == ["a", "b", "a (2)", "a (3)"]
    assert unique(["a", "a (2)", "a"]) == ["a", "a (2)", "a (3)"]  # never a label that is already there


def test_two_models_of_the_same_name_and_version_are_told_apart_by_their_data():
    shop = record(1, "gaussian_nb", "d1", "shop.csv")
    houses = record(2, "gaussian_nb", "d2", "houses.csv", target="pricey")
    lone = record(3, "logistic_regression", "d1", "shop.csv")
    labels = model_labels([shop, houses, lone])
    assert labels == {
        1: "gaussian_nb v1 · shop.csv → bought",
        2: "gaussian_nb v1 · houses.csv → pricey",
        3: "logistic_regression v1",
    }
    assert model_labels([shop, lone], with_data=True)[3] == "logistic_regression v1 · shop.csv → bought"


def test_two_uploads_of_the_same_name_are_told_apart_by_upload_time_or_id():
    first = record(1, "gaussian_nb", "aaaaaa11", "sales.csv")
    second = record(2, "gaussian_nb", "bbbbbb22", "sales.csv")
    uploaded = {"aaaaaa11": "2026-11-26T18:02:00+00:00", "bbbbbb22": "2026-11-27T09:15:00+00:00"}
    assert dataset_labels([first, second], uploaded) == {
        "aaaaaa11": "sales.csv (uploaded 2026-11-26 18:02 UTC)",
        "bbbbbb22": "sales.csv (uploaded 2026-11-27 09:15 UTC)",
    }
    # one of them deleted (no upload time): the start of the id tells them apart
    assert dataset_labels([first, second], {"aaaaaa11": uploaded["aaaaaa11"]}) == {
        "aaaaaa11": "sales.csv (id aaaaaa)",
        "bbbbbb22": "sales.csv (id bbbbbb)",
    }
    labels = model_labels([first, second], uploaded)
    assert len(set(labels.values())) == 2
    assert labels[2] == "gaussian_nb v1 · sales.csv (uploaded 2026-11-27 09:15 UTC) → bought"
