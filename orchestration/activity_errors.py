"""The application errors activities raise: the types a retry policy names, and the messages a user reads."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

INVALID_INPUT = "InvalidInput"  # non-retryable: the user must change something
FIT_TOO_LONG = "FitTooLong"  # non-retryable: the fit passed the hard wall of its time budget


def refuse(message: str) -> ApplicationError:
    """Bad input: fail at once (no retry) with a message the user can act on."""
    return ApplicationError(message, type=INVALID_INPUT, non_retryable=True)


def too_long(max_minutes: float, what: str = "The fit") -> ApplicationError:
    from ml.guardrails import over_wall

    return ApplicationError(over_wall(max_minutes, what), type=FIT_TOO_LONG, non_retryable=True)


def child_died(exc: Exception) -> ApplicationError:
    """A fit process that died (out of memory, killed): retryable, with a message a user can read."""
    return ApplicationError(str(exc), type="FitProcessDied")
