"""Limits the data sets on a run's settings: rows on each side of the split, cross-validation folds, and
parameters such as k-NN's neighbours (declared in ml/catalog.py). Pure arithmetic on row and class counts,
no pandas: the data check, the service's launch validation and the load stage all ask the same questions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml.model_spec import ModelSpec, RowBound
from ml.plain import shown

MIN_ROWS = 10  # rows with a target a run needs at all (ml.training.prepare refuses fewer)
MIN_SIDE_ROWS = 2  # rows each side of the split needs: one row measures nothing
TEST_PERCENTS = range(5, 51)  # the test splits a user can choose (orchestration.validation.check_split)


@dataclass(frozen=True)
class Rows:
    """How a run's rows divide: those with a target, the test rows, the training rows, and the largest
    cross-validation fold, which one fit leaves out (0 without cross-validation)."""

    usable: int
    test: int
    train: int
    fold: int = 0

    @property
    def fit(self) -> int:
        """The fewest rows any one fit sees: the training rows, less a fold when cross-validating."""
        return self.train - self.fold

    def describe(self) -> str:
        fold = f", less {self.fold} of one cross-validation fold" if self.fold else ""
        return f"{self.usable} rows with a target, less {self.test} test rows{fold}"


def split_rows(usable: int, test_size: float, cv_folds: int = 0) -> Rows:
    """The sizes scikit-learn's train_test_split and (Stratified)KFold give: the test side is rounded up,
    and folds differ by at most one row, so the largest has ceil(train / k)."""
    test = math.ceil(test_size * usable)
    train = usable - test
    fold = math.ceil(train / cv_folds) if cv_folds and train > 0 else 0
    return Rows(usable, test, train, fold)


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _pct(test_size: float) -> str:
    return f"{test_size * 100:.3g}%"


def _split_errors(rows: Rows, test_size: float, classes: Mapping[Any, int] | None, class_count: int | None = None) -> list[str]:
    errors = []
    if rows.test < MIN_SIDE_ROWS:
        enough = next((p for p in TEST_PERCENTS if split_rows(rows.usable, p / 100).test >= MIN_SIDE_ROWS), None)
        fix = f"Use a test split of at least {enough}%" if enough else "Add rows"
        errors.append(
            f"A {_pct(test_size)} test split of {rows.usable} rows holds out {_rows(rows.test)}; at least "
            f"{MIN_SIDE_ROWS} are needed to measure the model. {fix}."
        )
    if rows.train < MIN_SIDE_ROWS:
        errors.append(
            f"A {_pct(test_size)} test split of {rows.usable} rows leaves {rows.train} for training; at least "
            f"{MIN_SIDE_ROWS} are needed. Use a smaller test split or more rows."
        )
    n_classes = len(classes) if classes else class_count
    if n_classes and n_classes > rows.train:
        errors.append(
            f"A {_pct(test_size)} test split leaves {rows.train} training rows for {n_classes} classes: at least "
            "one class would be missing from training. Use a smaller test split or more rows."
        )
    elif rows.train < MIN_SIDE_ROWS or rows.test < 1:
        pass
    elif classes:
        errors += _missing_class_errors(rows, test_size, classes)
    elif class_count and 2 * class_count > rows.usable:
        # only the number of classes is known (the service): fewer than two rows a class means one has a single row
        errors.append(
            f"{rows.usable} rows for {class_count} classes: at least one class has a single row, and the "
            f"{_pct(test_size)} test split may take it; the model would then never see that class in training. "
            "Add rows of the rare classes, or remove the classes with a single row from the file (or pick another target)."
        )
    return errors


def _missing_class_errors(rows: Rows, test_size: float, classes: Mapping[Any, int]) -> list[str]:
    """A class the split can leave out of the training rows: the model would never see it (a classifier
    of one class cannot be fitted at all). Refused whatever the seed, as `fewest_in_training` counts."""
    fewest = fewest_in_training(rows, classes)
    lost = sorted((label for label, n in fewest.items() if n == 0), key=lambda c: (classes[c], str(c)))
    if not lost:
        return []
    labels = [shown(c) for c in lost[:3]] + ([f"{len(lost) - 3} more"] if len(lost) > 3 else [])
    named = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
    counts = {classes[c] for c in lost}
    n = min(counts)
    if len(lost) == 1:
        it = "it" if n == 1 else "them all"
        what = f"Class {named} has only {_rows(n)}, and the {_pct(test_size)} test split may take {it}"
        them = "that class"
    else:
        each = f"{_rows(n)} each" if len(counts) == 1 else f"{n} to {max(counts)} rows each"
        what = f"Classes {named} have {each}, and the {_pct(test_size)} test split may take all of a class's rows"
        them = "those classes"
    return [
        f"{what}: the model would then never see {them} in training. Add rows of {them}, or remove "
        f"{'their rows' if len(lost) > 1 else 'its row' if n == 1 else 'its rows'} from the file (or pick another target)."
    ]


def fewest_in_training(rows: Rows, classes: Mapping[Any, int]) -> dict[Any, int]:
    """The fewest training rows each class can get, whatever the seed. A stratified split gives a class at
    least its share of the training rows, rounded down; without one (a class of 1 row, or more classes than
    test rows: ml.training.split then splits at random) a class may lose up to all the test rows."""
    stratified = min(classes.values()) >= 2 and len(classes) <= min(rows.test, rows.train)
    return {label: (rows.train * n) // rows.usable if stratified else max(0, n - rows.test) for label, n in classes.items()}


def _fold_errors(rows: Rows, test_size: float, k: int, classes: Mapping[Any, int] | None) -> list[str]:
    errors = []
    if rows.train < 2 * k:
        fix = f"Use at most {rows.train // 2} folds, a smaller test split" if rows.train >= 4 else "Use a smaller test split"
        errors.append(
            f"{k}-fold cross-validation needs at least {2 * k} training rows; the {_pct(test_size)} test split "
            f"leaves {rows.train}. {fix}, or turn cross-validation off."
        )
    if classes:
        fewest_rows = fewest_in_training(rows, classes)
        label = min(fewest_rows, key=lambda c: fewest_rows[c])
        fewest = fewest_rows[label]
        if 0 < fewest < k:  # none at all: the split's own error says so (folds are not the problem)
            fix = f"Use at most {fewest} folds" if fewest >= 2 else "Turn cross-validation off"
            errors.append(
                f"{k}-fold cross-validation needs at least {k} rows of each class in the training rows; class "
                f"{shown(label)} has {_rows(classes[label])} in all and may get only {fewest} there. {fix}"
                f"{', or turn cross-validation off' if fewest >= 2 else ''}."
            )
    return errors


def largest_allowed(bound: RowBound, fit_rows: int) -> int:
    """The largest value of a bounded parameter for this many rows per fit (`per` may be fractional)."""
    return math.floor(fit_rows / bound.per + 1e-9)


def _param_errors(spec: ModelSpec, params: dict[str, Any], rows: Rows) -> list[str]:
    errors = []
    fit = rows.fit
    for p in spec.params:
        bound = p.row_bound
        value = params.get(p.name, p.default)
        if bound is None or not isinstance(value, int) or (p.none_label and value == 0):
            continue
        most = largest_allowed(bound, fit)
        if value > most:
            fix = f"Use at most {most}, or more rows." if p.min is None or most >= p.min else "Use more rows."
            errors.append(f"'{p.name}' is {value}, but each fit sees only {fit} rows ({rows.describe()}): {bound.reason}. {fix}")
    if spec.min_fit_rows > fit:
        errors.append(
            f"{spec.label} needs at least {spec.min_fit_rows} rows per fit, but each fit sees only {fit} "
            f"({rows.describe()}): {spec.min_fit_rows_reason}. Use more rows or another model."
        )
    return errors


def bound_errors(
    spec: ModelSpec,
    params: dict[str, Any],
    usable_rows: int,
    test_size: float,
    cv_folds: int = 0,
    classes: Mapping[Any, int] | None = None,
    class_count: int | None = None,
) -> list[str]:
    """Every limit the data sets that these settings pass, each a plain sentence naming the setting and the
    limit; [] when none. `params` are cleaned (ModelSpec.validate); `classes`: rows per class for a
    classifier when known. The service knows only the row count and, from the dataset's profile, how many
    classes there are (`class_count`): what those settle is refused there; the rest waits for the load
    stage, which knows the rows per class."""
    if spec.task != "classification":
        classes = class_count = None
    rows = split_rows(usable_rows, test_size, cv_folds)
    errors = _split_errors(rows, test_size, classes, class_count)
    if cv_folds:
        errors += _fold_errors(rows, test_size, cv_folds, classes)
    if rows.fit >= 1:
        errors += _param_errors(spec, params, rows)
    return errors


def too_few_rows(rows: int) -> str | None:
    """Why a target with a value in only `rows` rows cannot train and test a model (None if it can)."""
    return f"Only {rows} rows have a target value; at least {MIN_ROWS} are needed to train and test." if rows < MIN_ROWS else None


TOO_MANY = "too many classes to learn"
TOO_MANY_TAIL = ". If it is a number column, fix those values and train a regression model."


def target_problem(spec: ModelSpec, target: str, *, numeric: bool, floating: bool, classes: int, rows: int) -> str | None:
    """Why this target cannot train this model (None if it can), from its kind and counts alone: what `prepare`
    refuses, and what the service refuses at launch from the dataset's profile (orchestration/validation.py).
    `numeric`: numbers, not booleans; `classes`: its distinct values (for a regression, 1 or more: one is refused);
    `rows`: with a value."""
    if spec.task == "regression":
        if not numeric:
            return (
                f"{spec.label} predicts numbers, but {shown(target)} holds text or categories. "
                "Pick a classification model or a numeric target."
            )
        if classes == 1:  # every model would predict it exactly: an R² of 1.0 that means nothing
            return f"The target {shown(target)} holds a single value in every row; there is nothing to predict."
        return None
    if classes < 2:
        return f"The target {shown(target)} has a single class; a classifier needs at least two."
    if floating and classes > 50:
        return (
            f"The target {shown(target)} has {classes} distinct numeric values; that is a regression target. "
            "Pick a regression model."
        )
    if classes > 50 and classes > rows / 2:
        return f"The target {shown(target)} has {classes} distinct values in {rows} rows: {TOO_MANY}"
    return None
