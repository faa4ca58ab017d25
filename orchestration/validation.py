"""Checks on what a user asks the service for (parameters, split, batches, retries), as UserErrors."""

from __future__ import annotations

from typing import Any

from core.names import InvalidName, check_username
from ml.catalog import ModelSpec, ParamError, get_model
from orchestration.contracts import BatchRequest, ChildState
from orchestration.errors import UserError

MAX_BATCH_ITEMS = 50
MAX_PARALLEL = 16


def validated_params(model: str, params: dict) -> tuple[ModelSpec, dict[str, Any]]:
    """(model spec, cleaned parameters), or a UserError naming the field."""
    try:
        spec = get_model(model)
        return spec, spec.validate(params)
    except ParamError as exc:
        raise UserError(str(exc)) from None


def check_split(test_size: float, seed: int, cv_folds: int) -> None:
    if not 0.05 <= test_size <= 0.5:
        raise UserError("The test split must be between 5% and 50% of the rows.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise UserError("The seed must be a whole number between 0 and 2147483647.")
    if cv_folds not in (0, *range(2, 11)):
        raise UserError("Cross-validation takes 2 to 10 folds (0 turns it off).")


def check_batch(request: BatchRequest) -> None:
    """Validate a batch in place: cleans each item's parameters and sets `request.task` (one task per batch)."""
    if not 1 <= len(request.items) <= MAX_BATCH_ITEMS:
        raise UserError(f"A batch holds 1 to {MAX_BATCH_ITEMS} configurations; this one has {len(request.items)}.")
    tasks = set()
    for item in request.items:
        spec, item.params = validated_params(item.model, item.params)
        tasks.add(spec.task)
    if len(tasks) > 1:
        raise UserError("A batch trains models for one task: all classification or all regression.")
    request.task = tasks.pop()
    if not 1 <= request.max_parallel <= MAX_PARALLEL:
        raise UserError(f"Parallel runs must be between 1 and {MAX_PARALLEL}.")
    check_split(request.test_size, request.seed, request.cv_folds)


def retry_edits(children: list[ChildState], edits: dict[int, dict] | None) -> dict[str, dict]:
    """New parameters for failed children, by configuration index (as a string, as the signal takes them)."""
    clean: dict[str, dict] = {}
    for index, params in (edits or {}).items():
        child = next((c for c in children if c.index == int(index)), None)
        if child is None or child.status != "failed":
            raise UserError(f"Configuration {index} did not fail.")
        if not isinstance(params, dict):
            raise UserError(f"The parameters of configuration {index} must be a mapping of names to values.")
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
