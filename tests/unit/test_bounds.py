"""ml.bounds: every limit the data sets on a run's settings, refused with a sentence naming the setting and
the limit; the arithmetic agrees with scikit-learn, and each declared bound is where scikit-learn breaks."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from ml.bounds import bound_errors, fewest_in_training, largest_allowed, split_rows
from ml.catalog import MODELS, get_model
from ml.model_spec import ModelSpec, Param, RowBound

BOUNDED = [(key, p.name) for key, spec in MODELS.items() for p in spec.params if p.row_bound is not None]
UNBOUNDED = [key for key, spec in MODELS.items() if not any(p.row_bound for p in spec.params) and not spec.min_fit_rows]


def test_the_catalog_declares_the_bounds_the_review_found():
    assert sorted(BOUNDED) == sorted(
        [("knn_classifier", "n_neighbors"), ("knn_regressor", "n_neighbors")]
        + [(k, "min_samples_leaf") for k in MODELS if "tree" in k or "forest" in k]
    )
    assert {k for k, s in MODELS.items() if s.min_fit_rows} == {
        "hist_gradient_boosting_classifier",
        "hist_gradient_boosting_regressor",
    }


# --- a parametrised table over the models: at the limit passes, one beyond is refused ---------------

# 50 rows, 20% test: 10 test rows, 40 training rows; 5-fold cross-validation leaves out 8: 32 rows per fit
ROWS, TEST, FOLDS, FIT = 50, 0.2, 5, 32


def _bound(spec: ModelSpec, name: str) -> RowBound:
    bound = next(p.row_bound for p in spec.params if p.name == name)
    assert bound is not None, f"{name} has no bound"
    return bound


def _extreme(p: Param, pick: Callable[[float, float], float]) -> Any:
    """The smallest or largest value of a parameter (the last of its choices)."""
    if p.type == "choice":
        return p.choices[-1]
    assert p.min is not None and p.max is not None  # numeric parameters are bounded
    return pick(p.min, p.max) if p.type == "int" else float(pick(p.min, p.max))


@pytest.mark.parametrize(("model", "param"), BOUNDED)
def test_a_bounded_parameter_is_refused_one_beyond_its_limit_naming_it_and_the_limit(model, param):
    spec = get_model(model)
    per = _bound(spec, param).per
    limit = {1: 32, 2: 16, 3.2: 10}[per]  # of the 32 rows per fit
    assert limit == largest_allowed(_bound(spec, param), FIT)
    classes = {"a": 25, "b": 25} if spec.task == "classification" else None
    assert bound_errors(spec, spec.validate({param: limit}), ROWS, TEST, FOLDS, classes) == []
    errors = bound_errors(spec, spec.validate({param: limit + 1}), ROWS, TEST, FOLDS, classes)
    assert len(errors) == 1
    assert errors[0].startswith(f"'{param}' is {limit + 1}, but each fit sees only {FIT} rows ")
    assert "50 rows with a target, less 10 test rows, less 8 of one cross-validation fold" in errors[0]
    assert errors[0].endswith(f"Use at most {limit}, or more rows.")


@pytest.mark.parametrize("model", UNBOUNDED)
def test_a_model_without_bounds_accepts_every_parameter_at_its_extremes_on_the_smallest_data(model):
    spec = get_model(model)
    for pick in (min, max):
        params = {p.name: _extreme(p, pick) for p in spec.params}
        classes = {"a": 5, "b": 5} if spec.task == "classification" else None
        assert bound_errors(spec, spec.validate(params), 10, 0.2, 0, classes) == []


@pytest.mark.parametrize("model", ["hist_gradient_boosting_classifier", "hist_gradient_boosting_regressor"])
def test_histogram_boosting_needs_forty_rows_per_fit(model):
    spec = get_model(model)
    assert bound_errors(spec, spec.validate({}), 50, 0.2, 0) == []  # 40 training rows
    (error,) = bound_errors(spec, spec.validate({}), 49, 0.2, 0)  # 39
    assert error.startswith(f"{spec.label} needs at least 40 rows per fit, but each fit sees only 39 ")
    assert "Use more rows or another model." in error


def test_the_knn_message_reads_plainly():
    knn = get_model("knn_classifier")
    (error,) = bound_errors(knn, knn.validate({"n_neighbors": 20}), 12, 0.2, 0, {"a": 6, "b": 6})
    assert error == (
        "'n_neighbors' is 20, but each fit sees only 9 rows (12 rows with a target, less 3 test rows): k-NN looks "
        "for that many neighbours among the rows it was fitted on. Use at most 9, or more rows."
    )


# --- the split and the folds ---------------------------------------------------------------------------

RIDGE = get_model("ridge")
LOGREG = get_model("logistic_regression")


@pytest.mark.parametrize(
    ("rows", "test_size", "folds", "classes", "expected"),
    [
        (
            20,
            0.05,
            0,
            None,
            "A 5% test split of 20 rows holds out 1 row; at least 2 are needed to measure the model. "
            "Use a test split of at least 6%.",
        ),
        (20, 0.5, 0, {f"c{i}": 2 for i in range(10)}, None),  # 10 training rows for 10 classes
        (
            20,
            0.5,
            0,
            {f"c{i}": 1 for i in range(14)} | {"big": 6},
            "A 50% test split leaves 10 training rows for 15 classes: at least one class would be missing from training. "
            "Use a smaller test split or more rows.",
        ),
        (
            10,
            0.2,
            5,
            None,
            "5-fold cross-validation needs at least 10 training rows; the 20% test split leaves 8. "
            "Use at most 4 folds, a smaller test split, or turn cross-validation off.",
        ),
        (
            100,
            0.2,
            5,
            {"a": 96, "b": 4},
            "5-fold cross-validation needs at least 5 rows of each class in the training rows; class 'b' has 4 rows in "
            "all and may get only 3 there. Use at most 3 folds, or turn cross-validation off.",
        ),
        (
            100,
            0.2,
            3,
            {"a": 99, "b": 1},
            # a class the split can take whole is the split's problem, not the folds' (turning them off would not help)
            "Class 'b' has only 1 row, and the 20% test split may take it: the model would then never see that class "
            "in training. Add rows of that class, or remove its row from the file (or pick another target).",
        ),
        (
            11,
            0.2,
            0,
            {"p": 10, "q": 1},
            "Class 'q' has only 1 row, and the 20% test split may take it: the model would then never see that class "
            "in training. Add rows of that class, or remove its row from the file (or pick another target).",
        ),
        (
            30,
            0.1,
            0,
            {"a": 26, "b": 2, "c": 1, "d": 1},  # 4 classes, 3 test rows: not stratified, 'b' may go whole too
            "Classes 'c', 'd' and 'b' have 1 to 2 rows each, and the 10% test split may take all of a class's rows: the "
            "model would then never see those classes in training. Add rows of those classes, or remove their rows from "
            "the file (or pick another target).",
        ),
        (100, 0.2, 5, {"a": 90, "b": 10}, None),
        (100, 0.2, 10, None, None),
    ],
)
def test_the_split_and_the_folds_are_checked(rows, test_size, folds, classes, expected):
    spec = LOGREG if classes else RIDGE
    errors = bound_errors(spec, spec.validate({}), rows, test_size, folds, classes)
    assert errors == ([expected] if expected else [])


def test_the_test_split_suggestion_is_the_smallest_that_works():
    (error,) = bound_errors(RIDGE, {}, 12, 0.05, 0)
    assert error.endswith("Use a test split of at least 9%.")  # ceil(0.08 x 12) = 1, ceil(0.09 x 12) = 2
    assert bound_errors(RIDGE, {}, 12, 0.09, 0) == []


@pytest.mark.parametrize("rows", [10, 11, 17, 23, 50, 99])
@pytest.mark.parametrize("test_size", [0.05, 0.1, 0.2, 0.33, 0.5])
def test_split_rows_agrees_with_scikit_learn(rows, test_size):
    X = np.zeros((rows, 1))
    train, test = train_test_split(X, test_size=test_size, random_state=0)
    sizes = split_rows(rows, test_size)
    assert (sizes.train, sizes.test) == (len(train), len(test))
    for k in range(2, min(10, sizes.train) + 1):
        y = np.arange(sizes.train) % 2
        largest = max(len(v) for _, v in KFold(k).split(np.zeros((sizes.train, 1))))
        stratified = (
            max(len(v) for _, v in StratifiedKFold(k).split(np.zeros((sizes.train, 1)), y)) if k <= sizes.train // 2 else largest
        )
        assert split_rows(rows, test_size, k).fold == largest == stratified


@pytest.mark.parametrize("counts", [(96, 4), (70, 20, 10), (50, 30, 7, 3), (13, 13, 13), (40, 2)])
@pytest.mark.parametrize("test_size", [0.1, 0.2, 0.35, 0.5])
def test_the_fewest_training_rows_of_each_class_is_a_true_lower_bound(counts, test_size):
    """Whatever the seed, the real split (ml.training.split) gives each class at least the rows the fold
    check counts on."""
    import pandas as pd

    from ml.training import Prepared, split

    y = pd.Series(np.repeat(np.arange(len(counts)), counts))
    fewest = fewest_in_training(split_rows(len(y), test_size), dict(enumerate(counts)))
    prepared = Prepared(pd.DataFrame({"x": np.zeros(len(y))}), y, 0, len(counts))
    for seed in range(30):
        train, _ = split(prepared, test_size, seed, stratify=True)
        got = np.bincount(y.iloc[train], minlength=len(counts))
        assert all(got[c] >= fewest[c] for c in range(len(counts))), (seed, got, fewest)


# --- the declared bounds are where scikit-learn really breaks -----------------------------------------


def _xy(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] > 0).astype(int)


def test_knn_breaks_one_neighbour_beyond_the_rows_it_was_fitted_on():
    X, y = _xy(30)
    for model in ("knn_classifier", "knn_regressor"):
        spec = get_model(model)
        spec.build({"n_neighbors": 30}, 0).fit(X, y).predict(X)
        with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
            spec.build({"n_neighbors": 31}, 0).fit(X, y).predict(X)


@pytest.mark.parametrize("model", [k for k, p in BOUNDED if p == "min_samples_leaf"])
def test_a_tree_splits_at_its_leaf_limit_and_not_beyond(model):
    X, y = _xy(30)
    spec = get_model(model)
    params = {"n_estimators": 5} if "n_estimators" in spec.defaults() else {}
    limit = largest_allowed(_bound(spec, "min_samples_leaf"), 30)
    fitted = spec.build({**params, "min_samples_leaf": limit}, 0).fit(X, y)
    assert len(set(fitted.predict(X))) > 1, "at the limit the model still splits"
    if "random_forest" in model:  # bootstrap samples: just beyond the limit, most trees cannot split
        beyond = spec.build({**params, "n_estimators": 50, "min_samples_leaf": 11}, 0).fit(X, y)
        assert sum(t.get_n_leaves() == 1 for t in beyond.estimators_) > 25
        return
    one_leaf = spec.build({**params, "min_samples_leaf": limit + 1}, 0).fit(X, y)
    assert len(set(one_leaf.predict(X))) == 1, "beyond it the tree is one leaf"


def test_histogram_boosting_cannot_split_under_forty_rows():
    spec = get_model("hist_gradient_boosting_regressor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, splits in ((39, False), (40, True)):
            X, y = _xy(n, seed=1)
            predictions = spec.build({"max_iter": 5}, 0).fit(X, y.astype(float)).predict(X)
            assert (len(set(np.round(predictions, 9))) > 1) is splits


@pytest.mark.parametrize(
    ("rows", "class_count", "refused"),
    [(11, 2, False), (11, 5, False), (11, 6, True), (20, 10, False), (20, 11, True), (20, 17, True)],
)
def test_the_service_refuses_what_the_number_of_classes_settles(rows, class_count, refused):
    """Knowing only how many classes there are: fewer than two rows a class means a class of one row, which
    the split may take whole; more classes than training rows means one is missing for sure."""
    errors = bound_errors(LOGREG, LOGREG.validate({}), rows, 0.2, 0, class_count=class_count)
    assert bool(errors) is refused, errors
    assert not bound_errors(RIDGE, RIDGE.validate({}), rows, 0.2, 0, class_count=class_count), "regression has no classes"


@pytest.mark.parametrize("seed", range(40))
def test_no_split_leaves_a_class_out_of_training_unless_the_check_refuses_it(seed):
    """Whatever the seed, a split that the check lets through gives every class training rows."""
    import pandas as pd

    from ml.training import Prepared, split

    rng = np.random.default_rng(seed)
    counts = {f"c{i}": int(n) for i, n in enumerate(rng.integers(1, 6, rng.integers(2, 5)))}
    y = pd.Series(np.repeat(list(counts), list(counts.values())))
    test_size = float(rng.choice([0.1, 0.2, 0.3, 0.5]))
    if len(y) < 10:
        return
    prepared = Prepared(pd.DataFrame({"x": np.zeros(len(y))}), y, 0, len(counts))
    refused = bool(bound_errors(LOGREG, LOGREG.validate({}), len(y), test_size, 0, counts))
    lost = any(set(counts) - set(y.iloc[split(prepared, test_size, s, stratify=True)[0]]) for s in range(20))
    assert not lost or refused, (counts, test_size)
