"""Parameter sweeps: grid and random search over a model's schema, deterministic for a seed."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

from ml.catalog import ModelSpec, ParamError

MAX_TRIALS = 50


def grid(spec: ModelSpec, values: dict[str, list[Any]], budget: int) -> list[dict[str, Any]]:
    """Every combination of the listed values (others at their defaults), at most `budget` of them."""
    _check_budget(budget)
    names = sorted(values)
    combos = [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]
    if not combos:
        raise ParamError("the grid is empty: give at least one value per parameter")
    return [spec.validate(c) for c in combos[:budget]]


def random_search(spec: ModelSpec, ranges: dict[str, tuple[float, float]], budget: int, seed: int) -> list[dict]:
    """`budget` random draws: log-uniform for log-scale parameters, uniform otherwise; choices uniformly."""
    _check_budget(budget)
    rng = random.Random(seed)
    params = {p.name: p for p in spec.params}
    unknown = sorted(set(ranges) - set(params))
    if unknown:
        raise ParamError(f"unknown parameter(s) for {spec.label}: {', '.join(unknown)}")
    trials = []
    for _ in range(budget):
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
        trials.append(spec.validate(trial))
    return trials


def _check_budget(budget: int) -> None:
    if not 1 <= budget <= MAX_TRIALS:
        raise ParamError(f"the trial budget must be between 1 and {MAX_TRIALS}")
