"""Request checks the service makes before starting anything (no server)."""

from __future__ import annotations

import pytest

from core.datasets import ColumnProfile, DatasetInfo
from ml.catalog import get_model
from orchestration.contracts import BatchItem, BatchRequest, ChildState
from orchestration.errors import InvalidInput, UserError
from orchestration.validation import (
    MAX_BATCH_ITEMS,
    MAX_PARALLEL,
    check_batch,
    check_split,
    check_target,
    retry_edits,
    valid_username,
    validated_params,
)


def test_validated_params_fills_defaults():
    spec, params = validated_params("ridge", {})
    assert spec.key == "ridge" and "alpha" in params


def test_validated_params_names_an_unknown_parameter():
    with pytest.raises(UserError, match="unknown parameter.*bogus"):
        validated_params("ridge", {"bogus": 1})


@pytest.mark.parametrize(
    ("test_size", "seed", "folds", "message"),
    [
        (0.01, 1, 0, "test split"),
        (0.6, 1, 0, "test split"),
        (0.2, -1, 0, "seed"),
        (0.2, True, 0, "seed"),
        (0.2, 2**31, 0, "seed"),
        (0.2, 1.5, 0, "seed"),
        (0.2, 1, 1, "folds"),
        (0.2, 1, 11, "folds"),
    ],
)
def test_check_split_refuses(test_size, seed, folds, message):
    with pytest.raises(UserError, match=message):
        check_split(test_size, seed, folds)


@pytest.mark.parametrize("folds", [0, 2, 10])
def test_check_split_accepts(folds):
    check_split(0.2, 0, folds)


def _batch(*models: str, max_parallel: int = 2) -> BatchRequest:
    return BatchRequest("alice", "0123456789abcdef", "y", [BatchItem(m) for m in models], max_parallel=max_parallel)


def test_check_batch_cleans_params_and_sets_the_task():
    request = _batch("ridge", "lasso")
    check_batch(request)
    assert request.task == "regression" and all(item.params for item in request.items)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_batch(), "1 to 50 configurations; this one has 0"),
        (_batch(*["ridge"] * (MAX_BATCH_ITEMS + 1)), "this one has 51"),
        (_batch("ridge", "logistic_regression"), "one task"),
        (_batch("ridge", max_parallel=0), "Parallel runs"),
        (_batch("ridge", max_parallel=MAX_PARALLEL + 1), "Parallel runs"),
    ],
)
def test_check_batch_refuses(request_, message):
    with pytest.raises(UserError, match=message):
        check_batch(request_)


def _children() -> list[ChildState]:
    return [ChildState(0, "ridge", {}, status="completed"), ChildState(1, "ridge", {}, status="failed")]


def test_retry_edits_validates_new_params_of_failed_children():
    assert set(retry_edits(_children(), {1: {"alpha": 2.0}})) == {"1"}
    assert retry_edits(_children(), None) == {}


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({0: {}}, r"Configuration 1 \(index 0\) did not fail"),
        ({7: {}}, r"Configuration 8 \(index 7\) did not fail"),
        ({1: [1]}, "must be a mapping"),
        ({1: {"bogus": 1}}, "unknown parameter"),
    ],
)
def test_retry_edits_refuses(edits, message):
    with pytest.raises(UserError, match=message):
        retry_edits(_children(), edits)


def test_valid_username():
    assert valid_username("alice") == "alice"
    with pytest.raises(UserError, match="'../x'"):
        valid_username("../x")


# --- limits the data sets, as the service checks them before starting anything ----------------------


def test_the_service_refuses_more_neighbours_than_training_rows_at_once():
    from ml.catalog import get_model
    from orchestration.validation import check_data_bounds

    knn = get_model("knn_regressor")
    with pytest.raises(UserError, match=r"^'n_neighbors' is 20, but each fit sees only 9 rows .* Use at most 9, or more rows\.$"):
        check_data_bounds(knn, knn.validate({"n_neighbors": 20}), 12, 0.2, 0)
    check_data_bounds(knn, knn.validate({"n_neighbors": 9}), 12, 0.2, 0)
    check_data_bounds(knn, knn.validate({"n_neighbors": 20}), 9, 0.2, 0)  # under 10 rows: the load stage says why


def test_a_batch_names_the_configuration_beyond_a_limit():
    request = BatchRequest(
        "alice", "d" * 16, "y", [BatchItem("ridge", {}), BatchItem("knn_regressor", {"n_neighbors": 50})], cv_folds=5
    )
    check_batch(BatchRequest("alice", "d" * 16, "y", [BatchItem("knn_regressor", {"n_neighbors": 50})]), rows=100)
    with pytest.raises(UserError, match=r"^Configuration 2 \(k-nearest neighbours \(regression\)\): 'n_neighbors' is 50, "):
        check_batch(request, rows=60)  # 48 training rows, 38 per fit
    check_batch(request)  # without the row count (retries), the load stage checks


@pytest.mark.parametrize(
    ("item", "field"),
    [(BatchItem("ridge", {"alpha": -1}), "items.1.params"), (BatchItem("no_such_model"), "items.1.model")],
)
def test_a_batch_names_the_configuration_whose_parameters_are_refused(item, field):
    from orchestration.errors import InvalidInput

    request = BatchRequest("alice", "d" * 16, "y", [BatchItem("ridge", {}), item])
    with pytest.raises(InvalidInput, match=r"^Configuration 2: ") as refused:  # the second, at index 1
        check_batch(request)
    assert refused.value.field == field


def test_usable_rows_come_from_the_profile():
    from core.datasets import ColumnProfile, DatasetInfo
    from orchestration.validation import usable_rows

    info = DatasetInfo("d" * 16, "x.csv", "s", 1, 100, "now", [ColumnProfile("y", "float64", "numeric", 7, 50)])
    assert usable_rows(info, "y") == 93


def _profile(kind: str, dtype: str, unique: int, rows: int = 300) -> DatasetInfo:
    return DatasetInfo("d" * 16, "data.csv", "s", 1, rows, "now", [ColumnProfile("y", dtype, kind, 0, unique)])


def test_a_target_with_too_few_values_is_refused_from_the_profile():
    profile = DatasetInfo("d" * 16, "data.csv", "s", 1, 100, "now", [ColumnProfile("y", "float64", "numeric", 99, 1)])
    with pytest.raises(InvalidInput, match="Only 1 rows have a target value"):
        check_target(get_model("ridge"), profile, "y")


@pytest.mark.parametrize(
    "model, column, message",
    [
        ("ridge", ("categorical", "str", 2), "holds text or categories"),
        ("ridge", ("boolean", "bool", 2), "holds text or categories"),
        ("logistic_regression", ("categorical", "str", 1), "single class"),
        ("ridge", ("numeric", "float64", 1), "holds a single value in every row"),
        ("logistic_regression", ("numeric", "float64", 120), "that is a regression target"),
        ("logistic_regression", ("categorical", "str", 200), "too many classes to learn. If it is a number column"),
    ],
)
def test_a_target_the_model_cannot_learn_is_refused_from_the_profile(model, column, message):
    """The load stage's own rule (ml.bounds.target_problem), applied at launch to the dataset's profile."""
    with pytest.raises(InvalidInput, match=message) as refused:
        check_target(get_model(model), _profile(*column), "y")
    assert refused.value.field == "target"


@pytest.mark.parametrize(
    "model, column",
    [
        ("ridge", ("numeric", "float64", 250)),
        ("logistic_regression", ("numeric", "int64", 3)),
        ("gaussian_nb", ("categorical", "str", 40)),
    ],
)
def test_a_target_the_model_can_learn_passes(model, column):
    check_target(get_model(model), _profile(*column), "y")
