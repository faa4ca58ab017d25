"""The pre-launch data check: each guardrail says what is wrong in plain words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.catalog import get_model
from ml.guardrails import check_data

RF = get_model("random_forest_classifier")
LIN = get_model("linear_regression")


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "cat": rng.choice(["a", "b"], n), "const": 1, "id": [f"u{i}" for i in range(n)]})
    df["y"] = np.where(df.x > 0, "yes", "no")
    df["copy"] = df["y"]
    return df


def messages(check, level=None):
    return " | ".join(f.message for f in check.findings if level is None or f.level == level)


def test_a_clean_dataset_passes_with_an_estimate():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=100), "y": rng.choice(["p", "q"], 100)})
    check = check_data(df, "y", RF)
    assert check.ok and check.findings == []
    assert check.estimate_seconds is not None and check.estimate_memory_mb > 0


def test_constant_id_like_and_leaking_columns_are_flagged():
    check = check_data(frame(), "y", RF)
    assert check.ok
    text = messages(check)
    assert "'const' is constant" in text
    assert "Identifier-like column(s) not used as features: id" in text
    assert "identical to the target" in text and "copy" in text


def test_missing_target_rows_are_counted_and_missing_values_reported():
    df = frame()
    df.loc[:9, "y"] = None
    df.loc[:149, "x"] = np.nan
    check = check_data(df, "y", RF)
    assert "10 rows without a value for 'y' were left out" in messages(check, "info")
    assert "'x' is 74% missing" in messages(check, "warning")  # 140 of the 190 usable rows
    assert check.usable_rows == 190


def test_class_imbalance_is_a_warning():
    df = frame()
    df["y"] = ["rare"] * 5 + ["common"] * 195
    assert "imbalanced" in messages(check_data(df, "y", RF), "warning")


def test_single_class_and_text_regression_targets_are_refused():
    df = frame()
    df["y"] = "same"
    single = check_data(df, "y", RF)
    assert not single.ok and "single class" in messages(single, "error")
    text_target = check_data(frame(), "y", LIN)
    assert not text_target.ok and "predicts numbers" in messages(text_target, "error")


def test_a_missing_target_column_is_refused():
    assert "not in this dataset" in messages(check_data(frame(), "nope", RF), "error")


def test_bigger_models_estimate_longer():
    df = frame(2000)
    small = check_data(df, "y", RF, {"n_estimators": 10})
    big = check_data(df, "y", RF, {"n_estimators": 400})
    assert big.estimate_seconds > small.estimate_seconds


# --- the fit-time budget ------------------------------------------------------------------------------

SVC = get_model("svm_classifier")


def numbers(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n), "y": rng.choice(["p", "q"], n)}
    )


def test_a_fit_estimated_beyond_the_budget_is_an_error_naming_the_estimate_and_the_budget():
    check = check_data(numbers(60_000), "y", SVC, max_fit_minutes=1)  # SVC: quadratic in rows, ~2 min
    assert not check.ok
    assert check.estimate_seconds > 60
    assert "Estimated fit time ~2 min exceeds the 1-minute budget; use fewer rows or a faster model." in messages(check, "error")


def test_a_fit_within_the_budget_passes():
    check = check_data(numbers(60_000), "y", SVC, max_fit_minutes=60)
    assert check.ok and messages(check, "error") == ""
    assert check_data(numbers(60_000), "y", SVC).ok  # no budget given: none applied


def test_the_budget_message_reads_in_hours_for_long_fits():
    from ml.guardrails import over_budget

    assert over_budget(3 * 3600, 60) == (
        "Estimated fit time ~3 h exceeds the 60-minute budget; use fewer rows or a faster model."
    )
    assert over_budget(2.5 * 3600, 60).startswith("Estimated fit time ~2.5 h")
    assert over_budget(3600, 60) is None and over_budget(10**9, None) is None


def test_with_cross_validation_the_budget_covers_every_fold_and_the_final_fit():
    """Each of k folds fits about as much again: ~48 s alone is within 1 minute, x(5 + 1) is not."""
    data = numbers(40_000)  # SVC estimate: ~48 s per fit
    assert check_data(data, "y", SVC, max_fit_minutes=1).ok
    check = check_data(data, "y", SVC, cv_folds=5, max_fit_minutes=1)
    assert not check.ok
    assert (
        "Estimated fit time ~5 min (6 fits: 5 cross-validation folds and the final fit, ~48 s each) exceeds "
        "the 1-minute budget; use fewer folds, fewer rows or a faster model." in messages(check, "error")
    )


def test_the_hard_wall_is_twice_the_budget():
    from ml.guardrails import FIT_WALL_FACTOR, fit_wall_seconds, over_wall

    assert FIT_WALL_FACTOR == 2 and fit_wall_seconds(60) == 7200 and fit_wall_seconds(None) is None
    assert over_wall(60).startswith("The fit ran longer than 2 × the 60-minute budget and was stopped; ")
