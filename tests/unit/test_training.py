"""ml.training and ml.fitting: preparation, split and the fit (equal to plain scikit-learn), on small DataFrames built here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.catalog import MODELS, get_model
from ml.evaluation import evaluate
from ml.fitting import Growth, fit, reference_fit
from ml.training import DataError, folds, make_pipeline, prepare, split

FOREST_C = get_model("random_forest_classifier")
FOREST_R = get_model("random_forest_regressor")
LINEAR_R = get_model("linear_regression")
INCREMENTAL = [k for k, m in MODELS.items() if m.increments]


@pytest.fixture(autouse=True)
def one_thread():
    """OpenMP models (histogram boosting) on tiny data are fastest, and steadiest, on one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def frame(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """Numeric and text features with gaps, a text class target and a numeric target."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows).astype(float),
            "income": rng.normal(50, 15, rows).round(2),
            "city": rng.choice(["paris", "lyon", "nice"], rows).astype(object),
        }
    )
    df["bought"] = np.where(df.income + 10 * (df.city == "paris") > 55, "yes", "no")
    df["spend"] = 2.0 * df.income + 0.5 * df.age + rng.normal(0, 1, rows)
    df.loc[::7, "income"] = np.nan
    df.loc[::11, "city"] = None
    return df


def classification(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    return frame(rows, seed).drop(columns=["spend"])


def regression(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    return frame(rows, seed).drop(columns=["bought"])


def train_rows(df: pd.DataFrame, target: str, spec, seed: int = 3):
    prep = prepare(df, target, spec)
    train, test = split(prep, 0.25, seed, stratify=spec.task == "classification")
    return prep.X.iloc[train], prep.y.iloc[train], prep.X.iloc[test], prep.y.iloc[test]


# --- prepare ---------------------------------------------------------------------------------------


def test_prepare_separates_features_and_target():
    prep = prepare(classification(), "bought", FOREST_C)
    assert list(prep.X.columns) == ["age", "income", "city"]
    assert prep.y.name == "bought"
    assert prep.classes == 2


def test_prepare_drops_rows_with_missing_target_and_counts_them():
    df = classification(100)
    df.loc[[3, 10, 42], "bought"] = None
    prep = prepare(df, "bought", FOREST_C)
    assert prep.dropped_missing_target == 3
    assert len(prep.y) == len(prep.X) == 97
    assert prep.y.notna().all()
    assert "3 rows without a value for 'bought' are left out." in prep.notes


@pytest.mark.parametrize("key", ["random_forest_classifier", "logistic_regression", "hist_gradient_boosting_classifier"])
def test_a_true_false_target_with_gaps_trains_on_its_rows_with_a_value(key):
    """Read from a CSV, true/false with empty cells is a column of objects; scikit-learn could not tell what kind
    of target its booleans were ("Unknown label type") and the fit failed."""
    from core.csv_parse import parse_csv

    rng = np.random.default_rng(0)
    lines = ["x,z,paid"] + [
        f"{a:.3f},{b:.3f},{'' if i % 10 == 0 else str(a > 0).lower()}" for i, (a, b) in enumerate(rng.normal(size=(200, 2)))
    ]
    df = parse_csv("\n".join(lines))
    assert df["paid"].dtype == object  # what the upload gives
    spec = get_model(key)
    prep = prepare(df, "paid", spec)
    assert prep.y.dtype == bool and prep.classes == 2 and prep.dropped_missing_target == 20
    assert "20 rows without a value for 'paid' are left out." in prep.notes
    fitted = make_pipeline(spec, {}, 0, prep.X).fit(prep.X, prep.y)
    assert list(fitted[-1].classes_) == [False, True] and fitted.score(prep.X, prep.y) > 0.8


@pytest.mark.parametrize("gaps, said", [(1, "1 row without a value for 'bought' is left out."), (1234, "1,234 rows without")])
def test_the_rows_left_out_for_a_missing_target_are_counted_as_a_reader_counts(gaps, said):
    df = classification(3000)
    df.loc[df.index[:gaps], "bought"] = None
    assert any(note.startswith(said) for note in prepare(df, "bought", FOREST_C).notes)


def test_prepare_for_regression_has_no_classes():
    prep = prepare(regression(), "spend", FOREST_R)
    assert prep.classes == 0 and prep.dropped_missing_target == 0


def test_prepare_refuses_missing_target_column():
    with pytest.raises(DataError, match="'price' is not in this dataset"):
        prepare(classification(), "price", FOREST_C)


def test_prepare_refuses_single_class_target():
    df = classification()
    df["bought"] = "yes"
    with pytest.raises(DataError, match="single class"):
        prepare(df, "bought", FOREST_C)


def test_prepare_refuses_a_regression_target_with_a_single_value():
    df = regression()
    df["spend"] = 42.0  # every model would predict it exactly: an R² of 1.0 that says nothing
    with pytest.raises(DataError, match="'spend' holds a single value in every row"):
        prepare(df, "spend", LINEAR_R)
    df.loc[3, "spend"] = 41.0
    assert prepare(df, "spend", LINEAR_R).y.nunique() == 2


def test_prepare_refuses_text_target_for_regression():
    with pytest.raises(DataError, match="predicts numbers"):
        prepare(classification(), "bought", FOREST_R)


def test_prepare_refuses_boolean_target_for_regression():
    df = regression()
    df["spend"] = df.spend > 100
    with pytest.raises(DataError, match="predicts numbers"):
        prepare(df, "spend", LINEAR_R)


def test_prepare_refuses_continuous_target_for_classification():
    with pytest.raises(DataError, match="regression target"):
        prepare(regression(), "spend", FOREST_C)


def test_prepare_refuses_too_few_rows():
    with pytest.raises(DataError, match="at least 10"):
        prepare(classification(9), "bought", FOREST_C)


def test_prepare_counts_rows_after_dropping_missing_targets():
    df = classification(12)
    df.loc[[0, 1, 2], "bought"] = None
    with pytest.raises(DataError, match="Only 9 rows"):
        prepare(df, "bought", FOREST_C)


def test_prepare_refuses_target_without_features():
    with pytest.raises(DataError, match="no usable feature"):
        prepare(classification()[["bought"]], "bought", FOREST_C)


def test_prepare_leaves_out_identifier_and_leaking_columns():
    df = classification(60)
    df["customer_id"] = [f"c{i:04d}" for i in range(60)]
    df["answer"] = df["bought"]
    prep = prepare(df, "bought", FOREST_C)
    assert "customer_id" not in prep.X.columns and "answer" not in prep.X.columns
    assert len(prep.notes) == 2


# --- numeric identifier columns --------------------------------------------------------------------

_rng = np.random.default_rng(11)
_N = 100


def _with_gap(values) -> pd.Series:
    """Integers with one missing value: pandas reads such a column as floats."""
    s = pd.Series(values, dtype="float64")
    s.iloc[5] = np.nan
    return s


def _named(values, name: str) -> pd.Series:
    return pd.Series(values, name=name)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (pd.Series(range(1, _N + 1)), "counts one by one"),  # a row number
        (pd.Series(range(_N, 0, -1)), "counts one by one"),
        (pd.Series(range(7000, 7000 + _N)), "counts one by one"),  # a counter starting anywhere
        (pd.Series(pd.array(range(_N), dtype="Int64")), "counts one by one"),  # pandas' nullable integers
        (_named(_rng.permutation(np.arange(5000, 5000 + _N)), "customer_id"), "its name says identifier"),
        (_named(_rng.choice(10**6, _N, replace=False), "CustomerID"), "its name says identifier"),
        (_named(_rng.permutation(np.arange(100_000, 100_000 + _N)).astype("float64"), "customer_id"), "name says"),
        (_named(_with_gap(_rng.permutation(_N)), "order_no"), "its name says identifier"),
        (_named(_rng.permutation(12), "id"), "its name says identifier"),  # a name is evidence even on few rows
    ],
    ids=["row-number", "countdown", "counter", "nullable-int", "id-name", "camel-id", "whole-float-id", "no-gap", "tiny-id"],
)
def test_numeric_identifiers_are_recognised(values, reason):
    from ml.identifiers import numeric_id_reason

    assert reason in (numeric_id_reason(values) or "")


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(_rng.integers(18, 80, _N)),  # a numeric feature with repeats: an age
        pd.Series(_rng.normal(50, 15, _N)),  # floats
        pd.Series(_rng.normal(50, 15, _N).round(2)),
        pd.Series(np.arange(_N, dtype="float64")),  # whole floats without a gap: a measurement
        pd.Series(_rng.integers(0, 2, _N)),  # a flag
        pd.Series(_rng.integers(0, 2, _N).astype(bool)),
        pd.Series(np.repeat(np.arange(10), 10)),  # monotone, but few distinct values: a group
        pd.Series(range(19)),  # too few rows to tell
        pd.Series([f"c{i}" for i in range(_N)]),  # text: is_id_like's business
        _with_gap(_rng.normal(size=_N)),
        _named(_rng.choice(5000, 40, replace=False) + 400, "sqft"),  # all distinct, but a measurement's name
        _named(np.arange(1981, 2021), "year"),  # a yearly series counts by one, but in years
        _named(np.sort(_rng.choice(400, _N, replace=False)), "visits"),  # sorted counts
        _named(_rng.integers(0, 50, _N), "customer_id"),  # an id-like name over repeated values
        _named(_rng.permutation(_N), "number_of_rooms"),  # "number" names what is counted here
        _named(_rng.normal(size=_N), "sensor_id"),  # not whole numbers
    ],
    ids=[
        "age",
        "floats",
        "rounded-floats",
        "whole-floats",
        "flag",
        "bool",
        "group",
        "tiny",
        "text",
        "floats-with-a-gap",
        "sqft",
        "years",
        "sorted-visits",
        "id-name-repeats",
        "number-of",
        "id-name-floats",
    ],
)
def test_numeric_features_are_not_taken_for_identifiers(values):
    from ml.identifiers import numeric_id_reason

    assert numeric_id_reason(values) is None


@pytest.mark.parametrize(
    ("values", "warned"),
    [
        (_named(_rng.choice(5000, 40, replace=False) + 400, "sqft"), True),
        (pd.Series(_rng.permutation(np.arange(5000, 5000 + _N))), True),
        (_named(np.sort(_rng.choice(400, _N, replace=False)), "visits"), True),
        (_named(np.arange(1981, 2021), "year"), False),  # years are not identifiers
        (pd.Series(_rng.integers(18, 80, _N)), False),
        (pd.Series(range(1, _N + 1)), False),  # a row number: left out, not only warned about
        (pd.Series(np.arange(_N, dtype="float64")), False),
        (pd.Series(range(19)), False),
    ],
    ids=["sqft", "unique", "sorted-visits", "years", "age", "row-number", "whole-floats", "tiny"],
)
def test_distinct_integers_without_an_identifier_name_are_only_possible_identifiers(values, warned):
    from ml.identifiers import possible_id_reason

    assert (possible_id_reason(values) is not None) is warned


@pytest.mark.parametrize(
    ("name", "id_like"),
    [
        ("id", True),
        ("ID", True),
        ("customer_id", True),
        ("customerId", True),
        ("CustomerID", True),
        ("user id", True),
        ("uuid", True),
        ("order_no", True),
        ("invoice_number", True),
        ("product_key", True),
        ("zip_code", True),
        ("sqft", False),
        ("number_of_rooms", False),
        ("idle_time", False),
        ("video", False),
        ("year", False),
    ],
)
def test_identifier_names(name, id_like):
    from ml.identifiers import id_like_name

    assert id_like_name(name) is id_like


def test_prepare_leaves_a_numeric_identifier_out_unless_included():
    df = classification(60)
    df.insert(0, "customer_id", np.arange(1000, 1060))
    prep = prepare(df, "bought", FOREST_C)
    assert "customer_id" not in prep.X.columns and list(prep.numeric_ids) == ["customer_id"]
    assert prep.id_note in prep.notes and "customer_id (its name says identifier" in prep.id_note
    kept = prepare(df, "bought", FOREST_C, include=["customer_id"])
    assert "customer_id" in kept.X.columns and kept.id_note is None and list(kept.numeric_ids) == ["customer_id"]


def test_a_measurement_with_a_different_value_per_row_stays_a_feature():
    """40 houses, every area different: the area is the feature that matters, not an identifier."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"sqft": rng.choice(np.arange(600, 4000), 40, replace=False), "rooms": rng.integers(1, 6, 40)})
    df["price"] = 150 * df.sqft + rng.normal(0, 2000, 40)
    prep = prepare(df, "price", get_model("ridge"))
    assert "sqft" in prep.X.columns and prep.numeric_ids == {} and prep.id_note is None
    assert list(prep.possible_ids) == ["sqft"]


def test_a_year_column_of_a_yearly_series_stays_a_feature():
    df = pd.DataFrame({"year": np.arange(1981, 2021), "visits": np.sort(np.random.default_rng(1).choice(900, 40, replace=False))})
    df["sales"] = df.year * 2.0 + df.visits
    prep = prepare(df, "sales", get_model("ridge"))
    assert list(prep.X.columns) == ["year", "visits"] and prep.numeric_ids == {}


# --- split -----------------------------------------------------------------------------------------


def test_split_is_deterministic_for_a_seed():
    prep = prepare(classification(), "bought", FOREST_C)
    first, again = split(prep, 0.2, 7, stratify=True), split(prep, 0.2, 7, stratify=True)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_split_changes_with_the_seed():
    prep = prepare(classification(), "bought", FOREST_C)
    assert not np.array_equal(split(prep, 0.2, 1, stratify=True)[1], split(prep, 0.2, 2, stratify=True)[1])


def test_split_partitions_all_rows():
    prep = prepare(classification(150), "bought", FOREST_C)
    train, test = split(prep, 0.2, 0, stratify=True)
    assert len(test) == 30
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(150))


def test_split_is_stratified():
    df = pd.DataFrame({"x": np.arange(100.0), "y": ["a"] * 70 + ["b"] * 30})
    prep = prepare(df, "y", FOREST_C)
    for seed in range(5):
        _, test = split(prep, 0.2, seed, stratify=True)
        assert prep.y.iloc[test].value_counts().to_dict() == {"a": 14, "b": 6}


def test_split_without_stratify_works_for_regression():
    prep = prepare(regression(), "spend", FOREST_R)
    train, test = split(prep, 0.25, 0, stratify=False)
    assert len(train) == 90 and len(test) == 30


def test_split_falls_back_when_a_class_has_one_row():
    df = pd.DataFrame({"x": np.arange(30.0), "y": ["a"] * 15 + ["b"] * 14 + ["c"]})
    train, test = split(prepare(df, "y", FOREST_C), 0.2, 0, stratify=True)
    assert len(train) + len(test) == 30


def test_split_of_a_tiny_multiclass_dataset_is_refused_as_data_error_or_works():
    df = pd.DataFrame({"x": np.arange(10.0), "y": list("aaaabbbccc")})
    prep = prepare(df, "y", FOREST_C)
    try:
        train, test = split(prep, 0.2, 0, stratify=True)
    except DataError:
        return
    assert len(train) + len(test) == 10


# --- fit ---------------------------------------------------------------------------------------------


def _data(spec):
    df, target = (classification(), "bought") if spec.task == "classification" else (regression(), "spend")
    return train_rows(df, target, spec)


def _sized(spec) -> dict:
    """Small sizes: a few trees, iterations or epochs, so the whole catalog fits in a second."""
    small = {"n_estimators": 20, "max_iter": 20, "hidden_units": 8}
    return {k: v for k, v in small.items() if k in {p.name for p in spec.params}}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("key", list(MODELS))
def test_fit_equals_one_plain_fit(key):
    """Every model: `fit` (one call, with its progress read from the estimator's own output) gives the model
    one plain `pipeline.fit(X, y)` gives, settings included (a verbose level set to read progress is put back)."""
    spec = MODELS[key]
    X, y, X_test, _ = _data(spec)
    params = _sized(spec)
    fitted, _ = fit(make_pipeline(spec, params, 11, X), spec, X, y)
    reference = reference_fit(spec, params, 11, X, y)
    assert np.array_equal(fitted.predict(X_test), reference.predict(X_test))
    if hasattr(reference[-1], "predict_proba"):
        assert np.array_equal(fitted.predict_proba(X_test), reference.predict_proba(X_test))
    assert fitted[-1].get_params() == reference[-1].get_params()


@pytest.mark.parametrize("key", INCREMENTAL)
def test_a_model_grown_in_parts_equals_one_plain_fit(key):
    """Growth in parts applies to forests (each part a warm-start call); others ignore it and fit in one call."""
    spec = MODELS[key]
    X, y, X_test, _ = _data(spec)
    params = {spec.increments: 20}
    saved: list[int] = []
    grown, _ = fit(make_pipeline(spec, params, 11, X), spec, X, y, growth=Growth(0.0, lambda p, trees: saved.append(trees)))
    reference = reference_fit(spec, params, 11, X, y)
    assert np.array_equal(grown.predict(X_test), reference.predict(X_test))
    if spec.task == "classification":
        assert np.array_equal(grown.predict_proba(X_test), reference.predict_proba(X_test))
    assert grown[-1].get_params() == reference[-1].get_params()
    if spec.family == "forest":
        assert saved == sorted(saved) and len(saved) >= 2 and saved[-1] < 20, saved
    else:
        assert saved == []


def test_fit_resumed_from_a_checkpoint_equals_one_plain_fit(tmp_path):
    """A retry resumes from a forest saved part-way (as fit_model does) and still matches one fit."""
    from ml.persist import load_model, save_model

    X, y, X_test, _ = train_rows(classification(), "bought", FOREST_C)
    params = {"n_estimators": 20}
    saved: list[int] = []

    def checkpoint(pipeline, trees):
        if not saved:  # the first checkpoint only: the retry then grows most of the forest
            save_model(pipeline, tmp_path / "checkpoint.skops")
            saved.append(trees)

    fit(make_pipeline(FOREST_C, params, 5, X), FOREST_C, X, y, growth=Growth(0.0, checkpoint))
    resume = load_model(tmp_path / "checkpoint.skops")
    assert 0 < len(resume[-1].estimators_) == saved[0] < 20
    resumed, curve = fit(make_pipeline(FOREST_C, params, 5, X), FOREST_C, X, y, growth=Growth(0.0, lambda p, trees: None, resume))
    reference = reference_fit(FOREST_C, params, 5, X, y)
    assert np.array_equal(resumed.predict_proba(X_test), reference.predict_proba(X_test))
    assert resumed[-1].get_params() == reference[-1].get_params()
    assert curve.steps == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]


def test_fit_is_reproducible_for_a_seed():
    X, y, X_test, _ = train_rows(classification(), "bought", FOREST_C)
    a, _ = fit(make_pipeline(FOREST_C, {"n_estimators": 10}, 9, X), FOREST_C, X, y)
    b, _ = fit(make_pipeline(FOREST_C, {"n_estimators": 10}, 9, X), FOREST_C, X, y)
    assert np.array_equal(a.predict_proba(X_test), b.predict_proba(X_test))


def test_unseen_categories_at_predict_time_do_not_crash():
    X, y, _, _ = train_rows(classification(), "bought", FOREST_C)
    pipeline, _ = fit(make_pipeline(FOREST_C, {"n_estimators": 10}, 0, X), FOREST_C, X, y)
    new = pd.DataFrame({"age": [30.0, np.nan], "income": [60.0, 40.0], "city": ["tokyo", None]})
    assert set(pipeline.predict(new)) <= {"yes", "no"}


def test_scaled_model_handles_missing_values_and_text():
    spec = get_model("logistic_regression")
    X, y, X_test, _ = train_rows(classification(), "bought", spec)
    pipeline, _ = fit(make_pipeline(spec, {}, 0, X), spec, X, y)
    assert len(pipeline.predict(X_test)) == len(X_test)


# --- evaluate ----------------------------------------------------------------------------------------


def test_evaluate_classification_metrics_are_sane():
    X, y, X_test, y_test = train_rows(classification(200), "bought", FOREST_C)
    pipeline, _ = fit(make_pipeline(FOREST_C, {"n_estimators": 30}, 0, X), FOREST_C, X, y)
    metrics, _ = evaluate(pipeline, "classification", X_test, y_test)
    assert {"accuracy", "balanced_accuracy", "f1_macro"} <= set(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("accuracy", "balanced_accuracy", "f1_macro"))
    assert metrics["accuracy"] > 0.7


def test_evaluate_regression_metrics_are_sane():
    X, y, X_test, y_test = train_rows(regression(200), "spend", LINEAR_R)
    pipeline, _ = fit(make_pipeline(LINEAR_R, {}, 0, X), LINEAR_R, X, y)
    metrics, _ = evaluate(pipeline, "regression", X_test, y_test)
    assert set(metrics) == {"r2", "rmse", "mae"}
    assert metrics["r2"] > 0.6  # one income in seven is missing and imputed
    assert 0.0 <= metrics["mae"] <= metrics["rmse"]


def test_evaluate_perfect_predictions():
    df = pd.DataFrame({"x": np.r_[np.arange(20.0), np.arange(100.0, 120.0)], "y": ["lo"] * 20 + ["hi"] * 20})
    X, y, X_test, y_test = train_rows(df, "y", FOREST_C)
    pipeline, _ = fit(make_pipeline(FOREST_C, {"n_estimators": 5}, 0, X), FOREST_C, X, y)
    metrics, _ = evaluate(pipeline, "classification", X_test, y_test)
    assert metrics["accuracy"] == metrics["balanced_accuracy"] == metrics["f1_macro"] == 1.0


# --- review findings -------------------------------------------------------------------------------


def test_a_daily_date_column_is_expanded_not_dropped_as_an_identifier():
    n = 60
    df = pd.DataFrame(
        {
            "day": pd.date_range("2024-03-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "x": np.arange(n, dtype=float),
            "y": ["a", "b"] * (n // 2),
        }
    )
    prep = prepare(df, "y", FOREST_C)
    assert "day" in prep.X.columns
    assert any("Date column(s) day" in note for note in prep.notes)
    assert not any("Identifier" in note for note in prep.notes)


def test_dates_across_a_daylight_saving_change_parse():
    df = pd.DataFrame(
        {"when": ["2024-03-30T10:00:00+01:00", "2024-04-01T10:00:00+02:00"] * 15, "x": np.arange(30.0), "y": ["a", "b", "c"] * 10}
    )
    prep = prepare(df, "y", FOREST_C)
    pipeline = make_pipeline(FOREST_C, {"n_estimators": 5}, 0, prep.X)
    assert pipeline.fit(prep.X, prep.y).predict(prep.X).shape == (30,)


def test_a_text_target_with_a_class_per_row_is_refused_with_a_hint():
    y = [str(i) for i in range(200)]
    y[3] = "?"
    df = pd.DataFrame({"x": np.arange(200.0), "y": y})
    with pytest.raises(DataError, match="too many classes.*'\\?'"):
        prepare(df, "y", FOREST_C)


def test_more_folds_than_rows_allow_is_a_data_error():
    df = pd.DataFrame({"x": np.arange(12.0), "y": ["a", "b"] * 6})
    with pytest.raises(DataError, match="10-fold cross-validation needs at least 20"):
        folds(prepare(df, "y", FOREST_C), 10, 0, stratify=True)
