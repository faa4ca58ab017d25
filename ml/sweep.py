"""Parameter sweeps: grid and random search over a model's schema, deterministic for a seed."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable
from typing import Any

from ml.model_spec import ModelSpec, ParamError

MAX_TRIALS = 50
DRAWS_PER_TRIAL = 20  # a random search stops drawing after this many draws per trial it was asked for


def grid(spec: ModelSpec, values: dict[str, list[Any]], budget: int) -> list[dict[str, Any]]:
    """Every combination of the listed values (others at their defaults), at most `budget` of them."""
    _check_budget(budget)
    names = sorted(values)
    combos = [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]
    if not combos:
        raise ParamError("the grid is empty: give at least one value per parameter")
    return _distinct(spec.validate(c) for c in combos)[:budget]


def random_search(spec: ModelSpec, ranges: dict[str, tuple[float, float]], budget: int, seed: int) -> list[dict]:
    """Up to `budget` distinct trials from random draws: log-uniform for log-scale parameters, uniform
    otherwise; choices uniformly. A trial drawn again is dropped (it would train the same model twice), so
    a space smaller than the budget (n_neighbors 3 to 5) gives fewer trials: every one it holds."""
    _check_budget(budget)
    rng = random.Random(seed)
    params = {p.name: p for p in spec.params}
    unknown = sorted(set(ranges) - set(params))
    if unknown:
        raise ParamError(f"unknown parameter(s) for {spec.label}: {', '.join(unknown)}")
    trials: list[dict[str, Any]] = []
    for _ in range(budget * DRAWS_PER_TRIAL):
        if len(trials) == budget:
            break
        trial: dict[str, Any] = {}
        for name, bounds in ranges.items():
            p = params[name]
            if p.type == "choice":
                trial[name] = rng.choice(list(bounds))
                continue
            lo, hi = sorted(bounds)
            if p.log and lo > 0:
                value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            else:
                value = rng.uniform(lo, hi)
            trial[name] = round(value) if p.type == "int" else float(f"{value:.4g}")
        trials = _distinct([*trials, spec.validate(trial)])
    return trials


def _key(params: dict[str, Any]) -> str:
    return repr(sorted(params.items()))


def _distinct(trials: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trials without repeats (the same values listed twice, or 3 and 3.0), first ones first."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for trial in trials:
        if _key(trial) not in seen:
            seen.add(_key(trial))
            out.append(trial)
    return out


def _check_budget(budget: int) -> None:
    if not 1 <= budget <= MAX_TRIALS:
        raise ParamError(f"the trial budget must be between 1 and {MAX_TRIALS}")
