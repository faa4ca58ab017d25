"""The model catalog's schema types: a model's spec, its typed and bounded parameters, and their validation.

Importing this module does not import scikit-learn, so the UI can build forms from it cheaply.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

from ml.plain import shown

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")
# How a model's fit time grows (ml/guardrails.py keeps the cost of each): every model declares one
Family = Literal["linear", "tree", "forest", "boosting", "hist", "knn", "mlp", "nb", "svm"]


class ParamError(ValueError):
    """A request parameter is unknown or out of range; the message names the field."""


@dataclass(frozen=True)
class RowBound:
    """A limit the data sets on a parameter: the value times `per` must not exceed the rows one fit sees
    (the rows with a target, less the test rows, less a cross-validation fold). Checked by ml/bounds.py."""

    per: float
    reason: str  # what goes wrong beyond it, in plain words


@dataclass(frozen=True)
class Param:
    name: str
    type: Literal["int", "float", "choice"]
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    log: bool = False  # a log-scale parameter (the form steps through decades)
    none_label: str | None = None  # for ints: 0 stands for None ("unlimited")
    row_bound: RowBound | None = None  # a limit the data sets (see "Bounds that depend on the data" below)
    cost: bool = False  # the size of the model: the fit-time estimate grows with it
    memory: bool = False  # bounds the model's size: the memory estimate reads it (a tree's depth)

    def clean(self, value: Any) -> Any:
        label = f"'{self.name}'"
        if self.type == "choice":
            # same type too: True == 1 == 1.0 in Python, but sklearn reads them differently
            if not any(value == c and type(value) is type(c) for c in self.choices):
                raise ParamError(f"{label} must be one of {', '.join(map(str, self.choices))}; got {shown(value)}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"{label} must be a number; got {shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ParamError(f"{label} must be a finite number")
        if self.type == "int":
            if value != int(value):
                raise ParamError(f"{label} must be a whole number; got {shown(value)}")
            value = int(value)
        else:
            value = float(value)
        if self.none_label is not None and value == 0:
            return 0
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ParamError(f"{label} must be between {self.min:g} and {self.max:g}; got {shown(value)}")
        return value


@dataclass(frozen=True)
class ModelSpec:
    key: str
    label: str
    task: Task
    estimator: str  # import path of the scikit-learn class
    params: tuple[Param, ...]
    family: Family  # its fit-time cost family: a new model must say which (the data check's estimate)
    needs_scaling: bool = False
    # the estimator takes missing numbers itself (NaN) and learns where they go: numbers are passed to it as they
    # are, not filled with the column's median (which also costs seconds on a million rows)
    handles_missing: bool = False
    # the parameter counting its stages (trees, iterations): its fit reports progress in them, its curve reads them
    increments: str | None = None
    seeded: bool = True  # takes random_state
    fixed: dict[str, Any] = field(default_factory=dict)
    adapt: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # schema params -> estimator kwargs
    min_fit_rows: int = 0  # rows one fit needs whatever the parameters (a fixed setting's own bound)
    min_fit_rows_reason: str = ""

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults, refuse unknown names, check types and bounds."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ParamError(f"unknown parameter(s) for {self.label}: {', '.join(unknown)}")
        return {name: p.clean(params.get(name, p.default)) for name, p in known.items()}

    def checked_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters the data check reads (bounded by the data, or sizing the fit-time or memory estimate),
        cleaned: a change to any other parameter leaves the check's answer as it was."""
        cleaned = self.validate(params)
        return {p.name: cleaned[p.name] for p in self.params if p.row_bound is not None or p.cost or p.memory}

    def build(self, params: dict[str, Any], seed: int) -> BaseEstimator:
        module, _, cls = self.estimator.rpartition(".")
        kwargs = {k: (None if (v == 0 and self._param(k).none_label) else v) for k, v in self.validate(params).items()}
        if self.adapt is not None:
            kwargs = self.adapt(kwargs)
        kwargs.update(self.fixed)
        if self.seeded:
            kwargs["random_state"] = seed
        return getattr(importlib.import_module(module), cls)(**kwargs)

    def _param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)
