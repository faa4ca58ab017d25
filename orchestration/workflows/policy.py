"""The one retry policy every workflow's activities share, and how a failure reads in plain words."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from orchestration.activity_errors import INVALID_INPUT, plain_failure

# One retry layer: Temporal's, with exponential backoff. Bad input is refused at once.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[INVALID_INPUT],
)


def failure_message(err: BaseException) -> str:
    """What the activity itself said (the innermost message of a failure chain), in plain words: no class
    name in front, a timeout or a cancel told as such (orchestration.activity_errors.plain_failure)."""
    return plain_failure(err)
