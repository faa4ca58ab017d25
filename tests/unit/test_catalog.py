"""ml.catalog: typed, bounded parameter schemas; bad requests are refused naming the field."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from ml.catalog import MODELS, get_model, guess_task, models_for
from ml.model_spec import ParamError

ROOT = Path(__file__).resolve().parents[2]
FOREST = get_model("random_forest_classifier")
LOGREG = get_model("logistic_regression")


# --- validate -------------------------------------------------------------------------------------


def test_validate_fills_defaults():
    assert FOREST.validate({}) == FOREST.defaults()
    assert FOREST.validate({})["n_estimators"] == 100


def test_validate_keeps_given_values_and_fills_the_rest():
    cleaned = FOREST.validate({"n_estimators": 7})
    assert cleaned["n_estimators"] == 7
    assert cleaned["max_features"] == FOREST.defaults()["max_features"]


def test_validate_refuses_unknown_parameter_naming_it():
    with pytest.raises(ParamError, match="n_trees"):
        FOREST.validate({"n_trees": 10})


@pytest.mark.parametrize(
    "params, field",
    [
        ({"n_estimators": 0}, "n_estimators"),
        ({"n_estimators": 501}, "n_estimators"),
        ({"max_depth": -1}, "max_depth"),
        ({"max_depth": 51}, "max_depth"),
        ({"min_samples_leaf": 0}, "min_samples_leaf"),
    ],
)
def test_validate_refuses_out_of_range_naming_the_field(params, field):
    with pytest.raises(ParamError, match=f"'{field}'.*between"):
        FOREST.validate(params)


def test_validate_refuses_out_of_range_float():
    with pytest.raises(ParamError, match="'C'"):
        LOGREG.validate({"C": 1e5})


def test_validate_accepts_range_bounds():
    assert FOREST.validate({"n_estimators": 1})["n_estimators"] == 1
    assert FOREST.validate({"n_estimators": 500})["n_estimators"] == 500


@pytest.mark.parametrize("value", ["10", True, False, None, [10], {"n": 10}])
def test_validate_refuses_non_numbers_for_int(value):
    with pytest.raises(ParamError, match="'n_estimators'"):
        FOREST.validate({"n_estimators": value})


@pytest.mark.parametrize("value", ["1.0", True, math.nan, math.inf, -math.inf])
def test_validate_refuses_non_finite_or_non_numbers_for_float(value):
    with pytest.raises(ParamError, match="'C'"):
        LOGREG.validate({"C": value})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400], ids=["nan", "inf", "-inf", "10**400"])
def test_validate_refuses_non_finite_for_int_with_param_error(value):
    with pytest.raises(ParamError, match="'n_estimators'"):
        FOREST.validate({"n_estimators": value})


def test_validate_accepts_whole_float_for_int():
    cleaned = FOREST.validate({"n_estimators": 5.0})
    assert cleaned["n_estimators"] == 5
    assert type(cleaned["n_estimators"]) is int


def test_validate_refuses_fractional_float_for_int():
    with pytest.raises(ParamError, match="'n_estimators'.*whole number"):
        FOREST.validate({"n_estimators": 5.5})


def test_validate_converts_int_to_float_for_float_param():
    cleaned = LOGREG.validate({"C": 2})
    assert cleaned["C"] == 2.0 and type(cleaned["C"]) is float


@pytest.mark.parametrize("value", ["auto", "SQRT", None, 0.5, 2])
def test_choice_param_refuses_other_values(value):
    with pytest.raises(ParamError, match="'max_features'"):
        FOREST.validate({"max_features": value})


@pytest.mark.parametrize("value", ["sqrt", "log2", 1.0])
def test_choice_param_accepts_its_choices(value):
    assert FOREST.validate({"max_features": value})["max_features"] == value


@pytest.mark.parametrize("value", [True, 1])
def test_choice_param_refuses_lookalikes_of_a_float_choice(value):
    with pytest.raises(ParamError, match="'max_features'"):
        FOREST.validate({"max_features": value})


def test_max_depth_zero_means_unlimited():
    assert FOREST.validate({"max_depth": 0})["max_depth"] == 0
    assert FOREST.build({"max_depth": 0}, seed=1).max_depth is None


def test_max_depth_in_range_is_passed_through():
    assert FOREST.build({"max_depth": 7}, seed=1).max_depth == 7


# --- build ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [k for k, m in MODELS.items() if m.seeded])
def test_build_passes_the_seed_to_seeded_models(key):
    assert get_model(key).build({}, seed=1234).get_params()["random_state"] == 1234


@pytest.mark.parametrize("key", [k for k, m in MODELS.items() if not m.seeded])
def test_build_gives_no_seed_to_unseeded_models(key):
    assert get_model(key).build({}, seed=1234).get_params().get("random_state") is None


@pytest.mark.parametrize("key", list(MODELS))
def test_every_model_builds_with_its_defaults(key):
    spec = MODELS[key]
    estimator = spec.build({}, seed=0)
    assert type(estimator).__name__ == spec.estimator.rsplit(".", 1)[1]


def test_build_applies_fixed_settings():
    assert FOREST.build({}, seed=0).n_jobs == 1


def test_build_validates_before_building():
    with pytest.raises(ParamError, match="'n_estimators'"):
        FOREST.build({"n_estimators": 10_000}, seed=0)


def test_build_passes_the_cleaned_values():
    model = FOREST.build({"n_estimators": 12.0, "min_samples_leaf": 3, "max_features": "log2"}, seed=0)
    assert (model.n_estimators, model.min_samples_leaf, model.max_features) == (12, 3, "log2")


# --- lookup -------------------------------------------------------------------------------------------


def test_get_model_returns_the_spec():
    assert get_model("random_forest_classifier").key == "random_forest_classifier"


@pytest.mark.parametrize("key", ["", "random_forest", "RandomForestClassifier", "os.system"])
def test_get_model_unknown_is_a_param_error(key):
    with pytest.raises(ParamError, match="unknown model"):
        get_model(key)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_models_for_returns_only_that_task(task):
    specs = models_for(task)
    assert specs and all(s.task == task for s in specs)


def test_models_for_covers_the_catalog():
    assert {s.key for s in models_for("classification") + models_for("regression")} == set(MODELS)


def test_incremental_models_grow_a_real_parameter():
    for spec in MODELS.values():
        if spec.increments:
            assert spec.increments in spec.defaults()


def test_importing_the_catalog_does_not_import_sklearn():
    out = subprocess.run(
        [sys.executable, "-c", "import ml.catalog, sys; print('sklearn' in sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("kind", "unique", "task"),
    [
        ("numeric", 21, "regression"),  # many distinct numbers: a quantity
        ("numeric", 20, "classification"),  # few: codes of classes
        ("categorical", 500, "classification"),
        ("boolean", 2, "classification"),
    ],
)
def test_the_task_guessed_from_a_target_column(kind, unique, task):
    from core.datasets import ColumnProfile

    assert guess_task(ColumnProfile("y", "x", kind, 0, unique)) == task
