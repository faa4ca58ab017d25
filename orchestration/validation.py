"""Checks on what a user asks the service for (parameters, split, batches, retries), as UserErrors."""

from __future__ import annotations

from typing import Any

from core.datasets import DatasetInfo
from core.names import InvalidName, check_username
from ml.bounds import MIN_ROWS, TOO_MANY, TOO_MANY_TAIL, bound_errors, target_problem, too_few_rows
from ml.catalog import get_model
from ml.model_spec import ModelSpec, ParamError
from orchestration.contracts import BatchRequest, ChildState
from orchestration.errors import InvalidInput, UserError

MAX_BATCH_ITEMS = 50
MAX_PARALLEL = 16
TEST_SIZE_MIN, TEST_SIZE_MAX = 0.05, 0.5  # share of the rows held out for the test set
SEED_MAX = 2**31 - 1
MAX_FOLDS = 10  # cross-validation: 0 (off) or 2 to MAX_FOLDS folds


def validated_params(model: str, params: dict) -> tuple[ModelSpec, dict[str, Any]]:
    """(model spec, cleaned parameters), or a UserError naming the field."""
    try:
        spec = get_model(model)
    except ParamError as exc:
        raise InvalidInput(str(exc), "model") from None
    try:
        return spec, spec.validate(params)
    except ParamError as exc:
        raise InvalidInput(str(exc), "params") from None


def check_split(test_size: float, seed: int, cv_folds: int) -> None:
    """The split settings a launch and the data check accept (a number, not NaN, in range; whole numbers)."""
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not TEST_SIZE_MIN <= test_size <= TEST_SIZE_MAX:
        raise InvalidInput(
            f"The test split must be between {TEST_SIZE_MIN:.0%} and {TEST_SIZE_MAX:.0%} of the rows.", "test_size"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise InvalidInput(f"The seed must be a whole number between 0 and {SEED_MAX}.", "seed")
    if isinstance(cv_folds, bool) or not isinstance(cv_folds, int) or cv_folds not in (0, *range(2, MAX_FOLDS + 1)):
        raise InvalidInput(f"Cross-validation takes 2 to {MAX_FOLDS} folds (0 turns it off).", "cv_folds")


def usable_rows(dataset: DatasetInfo, target: str) -> int:
    """Rows with a value for the target, from the dataset's profile (what the load stage will keep)."""
    column = next((c for c in dataset.columns if c.name == target), None)
    return dataset.rows - (column.missing if column else 0)


def target_values(dataset: DatasetInfo, target: str) -> int | None:
    """How many distinct values the target holds (a classifier's classes), from the dataset's profile."""
    column = next((c for c in dataset.columns if c.name == target), None)
    return column.unique if column else None


def check_target(spec: ModelSpec, dataset: DatasetInfo, target: str) -> None:
    """Refuse a target this model cannot learn (text for a regression, one class, a float column for a
    classifier...) from the dataset's profile, before anything starts: the load stage's own rule (ml.training)."""
    column = next((c for c in dataset.columns if c.name == target), None)
    if column is None:
        return
    rows = dataset.rows - column.missing
    if few := too_few_rows(rows):  # the load stage's words (ml.training.prepare)
        raise InvalidInput(few, "target")
    numeric = column.kind == "numeric"
    floating = numeric and column.dtype.startswith("float")
    problem = target_problem(spec, target, numeric=numeric, floating=floating, classes=column.unique, rows=rows)
    if problem:
        raise InvalidInput(problem + (TOO_MANY_TAIL if problem.endswith(TOO_MANY) else ""), "target")


def check_data_bounds(
    spec: ModelSpec, params: dict[str, Any], rows: int, test_size: float, cv_folds: int, classes: int | None = None
) -> None:
    """Refuse settings beyond a limit the data sets (ml/bounds.py) before anything starts. The service knows
    the rows with a target and how many classes there are (`classes`), not the rows per class: the load stage
    checks those, and refuses at once too. Under MIN_ROWS rows the load stage's own refusal says what is wrong."""
    if rows < MIN_ROWS:
        return
    errors = bound_errors(spec, params, rows, test_size, cv_folds, class_count=classes)
    if errors:
        raise UserError(" ".join(errors))


def check_batch(request: BatchRequest, rows: int | None = None, classes: int | None = None) -> None:
    """Validate a batch in place: cleans each item's parameters and sets `request.task` (one task per batch).
    Messages count configurations from 1, as the pages do; the field names the item's index in `items` (from 0).
    With `rows` (the rows with a target), each configuration is checked against the limits the data sets;
    the message names the configuration."""
    if not 1 <= len(request.items) <= MAX_BATCH_ITEMS:
        raise InvalidInput(f"A batch holds 1 to {MAX_BATCH_ITEMS} configurations; this one has {len(request.items)}.", "items")
    tasks = set()
    for index, item in enumerate(request.items):
        try:
            spec, item.params = validated_params(item.model, item.params)
        except InvalidInput as exc:  # named as the batch pages and the API's items list number them
            raise InvalidInput(f"Configuration {index + 1}: {exc}", f"items.{index}.{exc.field}") from None
        tasks.add(spec.task)
    if len(tasks) > 1:
        raise UserError("A batch trains models for one task: all classification or all regression.")
    request.task = tasks.pop()
    if not 1 <= request.max_parallel <= MAX_PARALLEL:
        raise InvalidInput(f"Parallel runs must be between 1 and {MAX_PARALLEL}.", "max_parallel")
    check_split(request.test_size, request.seed, request.cv_folds)
    if rows is not None:
        for index, item in enumerate(request.items):
            try:
                check_data_bounds(get_model(item.model), item.params, rows, request.test_size, request.cv_folds, classes)
            except UserError as exc:
                label = get_model(item.model).label
                raise InvalidInput(f"Configuration {index + 1} ({label}): {exc}", f"items.{index}.params") from None


def retry_edits(children: list[ChildState], edits: dict[int, dict] | None) -> dict[str, dict]:
    """New parameters for failed children, by configuration index (as a string, as the signal takes them).
    Messages name a configuration as the pages do (from 1) and by the index it was sent with."""
    clean: dict[str, dict] = {}
    for index, params in (edits or {}).items():
        child = next((c for c in children if c.index == int(index)), None)
        named = f"Configuration {int(index) + 1} (index {int(index)})"
        if child is None or child.status != "failed":
            raise UserError(f"{named} did not fail.")
        if not isinstance(params, dict):
            raise UserError(f"The parameters of {named[0].lower()}{named[1:]} must be a mapping of names to values.")
        try:
            clean[str(index)] = get_model(child.model).validate(params)
        except ParamError as exc:
            raise UserError(str(exc)) from None
    return clean


def valid_username(name: str) -> str:
    try:
        return check_username(name)
    except InvalidName as exc:
        raise UserError(f"{name!r}: {exc}") from None
