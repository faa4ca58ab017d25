"""The model catalog: every model with its typed, bounded parameter schema, in one place.

Importing this module does not import scikit-learn, so the UI can build forms from it cheaply.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal["classification", "regression"]


class ParamError(ValueError):
    """A request parameter is unknown or out of range; the message names the field."""


@dataclass(frozen=True)
class Param:
    name: str
    type: Literal["int", "float", "choice"]
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    log: bool = False          # a log-scale parameter (the form steps through decades)
    none_label: str | None = None  # for ints: 0 stands for None ("unlimited")

    def clean(self, value: Any) -> Any:
        label = f"'{self.name}'"
        if self.type == "choice":
            if value not in self.choices:
                raise ParamError(f"{label} must be one of {', '.join(map(str, self.choices))}; got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"{label} must be a number; got {value!r}")
        if self.type == "int":
            if float(value) != int(value):
                raise ParamError(f"{label} must be a whole number; got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ParamError(f"{label} must be a finite number")
        if self.none_label is not None and value == 0:
            return 0
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ParamError(f"{label} must be between {self.min:g} and {self.max:g}; got {value:g}")
        return value


@dataclass(frozen=True)
class ModelSpec:
    key: str
    label: str
    task: Task
    estimator: str                      # import path of the scikit-learn class
    params: tuple[Param, ...]
    needs_scaling: bool = False
    increments: str | None = None       # parameter grown step by step (warm_start) for progress + cancel
    seeded: bool = True                 # takes random_state
    fixed: dict[str, Any] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults, refuse unknown names, check types and bounds."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ParamError(f"unknown parameter(s) for {self.label}: {', '.join(unknown)}")
        return {name: p.clean(params.get(name, p.default)) for name, p in known.items()}

    def build(self, params: dict[str, Any], seed: int):
        module, _, cls = self.estimator.rpartition(".")
        kwargs = {k: (None if (v == 0 and self._param(k).none_label) else v) for k, v in self.validate(params).items()}
        kwargs.update(self.fixed)
        if self.seeded:
            kwargs["random_state"] = seed
        return getattr(importlib.import_module(module), cls)(**kwargs)

    def _param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


_TREES = (
    Param("n_estimators", "int", 100, "Number of trees. More trees: steadier results, slower training.", 1, 500),
    Param("max_depth", "int", 0, "Deepest a tree may grow (0 = unlimited).", 1, 50, none_label="unlimited"),
    Param("min_samples_leaf", "int", 1, "Fewest samples allowed in a leaf; higher values smooth the model.", 1, 1000),
    Param("max_features", "choice", "sqrt", "Features considered at each split.", choices=("sqrt", "log2", 1.0)),
)

MODELS: dict[str, ModelSpec] = {
    m.key: m
    for m in (
        ModelSpec(
            "logistic_regression", "Logistic regression", "classification",
            "sklearn.linear_model.LogisticRegression",
            (
                Param("C", "float", 1.0, "Inverse regularisation strength: smaller values regularise more.", 1e-4, 1e4, log=True),
                Param("max_iter", "int", 500, "Most solver iterations.", 10, 10_000),
            ),
            needs_scaling=True,
        ),
        ModelSpec(
            "random_forest_classifier", "Random forest (classification)", "classification",
            "sklearn.ensemble.RandomForestClassifier", _TREES, increments="n_estimators", fixed={"n_jobs": 1},
        ),
        ModelSpec(
            "linear_regression", "Linear regression", "regression",
            "sklearn.linear_model.LinearRegression", (), needs_scaling=True, seeded=False,
        ),
        ModelSpec(
            "random_forest_regressor", "Random forest (regression)", "regression",
            "sklearn.ensemble.RandomForestRegressor",
            tuple(p if p.name != "max_features" else Param(
                "max_features", "choice", 1.0, "Features considered at each split.", choices=(1.0, "sqrt", "log2"))
                for p in _TREES),
            increments="n_estimators", fixed={"n_jobs": 1},
        ),
    )
}


def get_model(key: str) -> ModelSpec:
    try:
        return MODELS[key]
    except KeyError:
        raise ParamError(f"unknown model {key!r}; choose one of {', '.join(MODELS)}") from None


def models_for(task: Task) -> list[ModelSpec]:
    return [m for m in MODELS.values() if m.task == task]
