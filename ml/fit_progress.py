"""Live progress of one `fit` call, read from the estimator's own per-stage output, so a model fits in one call
(as plain scikit-learn does) and still says how far it is: a forest's and a histogram gradient boosting's
`verbose` lines (parsed here, never printed) and gradient boosting's `monitor` callback. Each costs one short
line or one call per tree or iteration: nothing measurable beside the tree itself.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import IO, Any

from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline

FORESTS = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)
BOOSTING = (GradientBoostingClassifier, GradientBoostingRegressor)
HIST = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)

_TREE = re.compile(r"building tree (\d+) of \d+")  # sklearn.ensemble._forest, verbose > 1: before each tree
_ITERATION = re.compile(r"\[(\d+)/\d+\]")  # histogram gradient boosting, verbose >= 2: before each iteration
_JOBLIB = "[Parallel("  # joblib's own lines on stderr, which a forest's verbose turns on too


@dataclass
class FitProgress:
    """Stages (trees, iterations) done out of `of`, as the fit reports them; `base`: the trees an earlier call of a
    forest grown in parts already holds (its lines count from 1 again). Written by the fitting thread, read by
    the one that reports it: plain int attributes, which the GIL keeps whole."""

    step: int = 0
    of: int = 0
    base: int = 0
    unit: str = "step"  # what a step is: "tree" or "iteration", as the page names it

    def started(self, stage: int) -> None:
        """Stage `stage` (1-based, of this call) begins: the ones before it are done."""
        self.step = max(self.step, self.base + stage - 1)


class _Lines(io.TextIOBase):
    """Stdout during the fit: the progress lines are read, and nothing is printed (a worker's log is not a console)."""

    def __init__(self, pattern: re.Pattern[str], progress: FitProgress) -> None:
        self.pattern, self.progress = pattern, progress

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for found in self.pattern.finditer(text):
            self.progress.started(int(found[1]))
        return len(text)


class _Quiet(io.TextIOBase):
    """Stderr during a forest's fit: joblib's progress lines are dropped, anything else passes on."""

    def __init__(self, target: IO[str]) -> None:
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not text.startswith(_JOBLIB):
            self.target.write(text)
        return len(text)


class _Monitor:
    """Gradient boosting's `monitor`: called after each stage; False means "go on", so the fit is unchanged."""

    def __init__(self, progress: FitProgress) -> None:
        self.progress = progress

    def __call__(self, stage: int, estimator: Any, env: dict[str, Any]) -> bool:
        self.progress.step = stage + 1
        return False


@contextmanager
def reporting(pipeline: Pipeline, progress: FitProgress) -> Iterator[dict[str, Any]]:
    """While the body fits `pipeline`, `progress` follows it; yields the fit parameters to pass to
    `pipeline.fit` (gradient boosting's monitor). A verbose level set for the fit is put back afterwards, so
    the fitted model equals (and predicts as quietly as) one fitted plainly."""
    import sys

    name, model = pipeline.steps[-1]
    if isinstance(model, BOOSTING):
        progress.unit = "iteration"
        yield {f"{name}__monitor": _Monitor(progress)}
        return
    pattern = _TREE if isinstance(model, FORESTS) else _ITERATION if isinstance(model, HIST) else None
    progress.unit = "tree" if pattern is _TREE else "iteration"
    if pattern is None:
        yield {}
        return
    verbose = model.get_params()["verbose"]
    model.set_params(verbose=2)
    try:
        with redirect_stdout(_Lines(pattern, progress)), redirect_stderr(_Quiet(sys.stderr)):
            yield {}
    finally:
        model.set_params(verbose=verbose)
