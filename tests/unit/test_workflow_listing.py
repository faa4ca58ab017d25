"""orchestration.listing_calls and metrics_calls, the pure parts: the visibility query from the API's filters,
the cursor bound to them, and the metrics' arithmetic."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestration.errors import InvalidInput
from orchestration.listing_calls import WorkflowFilter, decode_cursor, encode_cursor, workflow_query
from orchestration.metrics_calls import ModelDurations, durations_by_model, success_rate


def test_no_filter_lists_the_owners_runs_and_batches():
    assert workflow_query("alice", WorkflowFilter()) == "Owner = 'alice' AND RunKind IN ('train', 'batch')"


def test_every_filter_becomes_one_clause():
    f = WorkflowFilter(
        status="cancelled",
        kind="train",
        model="ridge",
        dataset_id="0123456789abcdef",
        started_after=datetime(2026, 1, 2, 3, 4, 5),  # no zone: UTC
        started_before=datetime(2026, 1, 3, tzinfo=timezone(timedelta(hours=2))),
    )
    assert workflow_query("alice", f) == (
        "Owner = 'alice' AND RunKind = 'train' AND ExecutionStatus = 'Canceled' AND Model = 'ridge' "
        "AND DatasetId = '0123456789abcdef' AND StartTime >= '2026-01-02T03:04:05.000000Z' "
        "AND StartTime <= '2026-01-02T22:00:00.000000Z'"
    )


@pytest.mark.parametrize(
    ("f", "field"),
    [
        (WorkflowFilter(status="Running' OR Owner != 'x"), "status"),
        (WorkflowFilter(kind="ingest"), "kind"),
        (WorkflowFilter(model="ridge' OR 'a'='a"), "model"),
        (WorkflowFilter(dataset_id="0123' OR '1'='1"), "dataset"),
    ],
)
def test_a_value_outside_its_set_is_refused_naming_the_field_never_quoted_into_the_query(f, field):
    with pytest.raises(InvalidInput) as err:
        workflow_query("alice", f)
    assert err.value.field == field


def test_a_cursor_round_trips_only_with_the_filters_it_was_given_for():
    query = workflow_query("alice", WorkflowFilter(kind="train"))
    cursor = encode_cursor(query, b"\x00page-token\xff")
    assert decode_cursor(query, cursor) == b"\x00page-token\xff"
    other = workflow_query("alice", WorkflowFilter(kind="batch"))
    for bad_query, bad_cursor in [(other, cursor), (query, "!!!"), (query, ""), (query, cursor[:6])]:
        with pytest.raises(InvalidInput) as err:
            decode_cursor(bad_query, bad_cursor)
        assert err.value.field == "cursor"
    assert workflow_query("bob", WorkflowFilter(kind="train")) != query  # another owner: another digest


def test_success_rate_counts_closed_runs_only():
    assert success_rate({}) is None
    assert success_rate({"running": 4}) is None
    assert success_rate({"running": 4, "completed": 3, "failed": 1}) == 0.75
    assert success_rate({"completed": 1, "cancelled": 1, "terminated": 1, "timed_out": 1}) == 0.25


def test_durations_are_grouped_by_model_most_runs_first():
    rows = [("ridge", 2.0), ("knn_classifier", 5.0), ("ridge", 4.0), ("ridge", 9.0), ("", 1.0)]
    assert durations_by_model(rows) == [
        ModelDurations("ridge", 3, 5.0, 4.0, 9.0),
        ModelDurations("?", 1, 1.0, 1.0, 1.0),
        ModelDurations("knn_classifier", 1, 5.0, 5.0, 5.0),
    ]


def test_a_time_before_the_first_utc_moment_is_refused_naming_the_field_and_early_years_keep_four_digits():
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    with pytest.raises(InvalidInput) as err:
        workflow_query("alice", WorkflowFilter(started_before=early))
    assert err.value.field == "started_before"
    assert "StartTime >= '0097-05-08T16:48:40.000000Z'" in workflow_query(
        "alice", WorkflowFilter(started_after=datetime.fromisoformat("0097-05-08T11:10:40-05:38"))
    )
