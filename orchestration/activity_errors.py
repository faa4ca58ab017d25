"""The application errors activities raise (the types a retry policy names), and the plain sentences a user
reads for a failure: no exception class names, no Temporal words."""

from __future__ import annotations

import errno
import re

from temporalio import activity
from temporalio.exceptions import (
    ApplicationError,
    ApplicationErrorCategory,
    CancelledError,
    FailureError,
    TimeoutError,
    TimeoutType,
)

INVALID_INPUT = "InvalidInput"  # non-retryable: the user must change something
FIT_TOO_LONG = "FitTooLong"  # non-retryable: the fit passed the hard wall of its time budget
STORAGE_UNUSABLE = "StorageUnusable"  # non-retryable: the server cannot write its storage; an admin must act


def refuse(message: str) -> ApplicationError:
    """Bad input: fail at once (no retry) with a message the user can act on. Benign: the worker logs it at debug
    level, not as a failed activity with its traceback (a user's malformed upload is not the worker's error)."""
    return ApplicationError(message, type=INVALID_INPUT, non_retryable=True, category=ApplicationErrorCategory.BENIGN)


def too_long(max_minutes: float, what: str = "The fit") -> ApplicationError:
    from ml.guardrails import over_wall

    return ApplicationError(over_wall(max_minutes, what), type=FIT_TOO_LONG, non_retryable=True)


# What scikit-learn says when the data or the settings cannot be fitted -> what the user can change. The same
# data and settings fail the same way every time, so such an error is refused at once, never retried.
_FIT_ERRORS = [
    (
        re.compile(r"at least 2 classes|only one class|contains 1 class|minimum of 2 classes|classes has to be greater", re.I),
        "The training rows hold a single class, and a classifier needs at least two. Use a smaller test split, "
        "add rows of the other classes, or pick another target.",
    ),
    (
        re.compile(r"n_neighbors\s*<=\s*n_samples", re.I),
        "k-NN was asked for more neighbours than the rows it was fitted on. Use fewer neighbours or more rows.",
    ),
    (
        re.compile(r"n_splits=\d+ cannot be greater than the number of members in each class", re.I),
        "A class has fewer training rows than there are cross-validation folds. Use fewer folds, or turn cross-validation off.",
    ),
    (
        re.compile(r"contains (NaN|infinity)|too large for dtype", re.I),
        "The data holds infinite or extremely large numbers the model cannot use. Fix or remove those values.",
    ),
]


def fit_refusal(exc: ValueError, what: str = "The model") -> ApplicationError:
    """A ValueError from fitting (scikit-learn's, or ml's DataError) as a non-retryable refusal in plain words.
    A DataError's message is already written for users; a library's is told in a sentence of ours, its own
    text (without a class name in front) added only where no sentence of ours fits."""
    from ml.training import DataError

    if isinstance(exc, DataError):
        return refuse(str(exc))
    text = str(exc)
    for pattern, sentence in _FIT_ERRORS:
        if pattern.search(text):
            return refuse(sentence)
    reason = plain_text(text.splitlines()[0] if text else "").rstrip(".")
    return refuse(
        f"{what} could not be trained with these settings on this data ({reason}). Change the parameters, or check the data."
    )


# Storage errors no retry can fix (an admin must act): the plain sentence for each. Never the server's path.
STORAGE_PERMISSION = (
    "The server cannot write to its storage (permission denied); ask an admin to check the storage folder's permissions."
)
STORAGE_FULL = "The server's storage is full; ask an admin to free some space."
STORAGE_QUOTA = "The server's storage quota is used up; ask an admin to free some space or raise the quota."
STORAGE_READ_ONLY = "The server's storage is read-only; ask an admin to make the storage folder writable."
STORAGE_NOT_A_FOLDER = "The server's storage folder is not set up right (a part of it is not a folder); ask an admin to check it."
_STORAGE_ERRNOS = {
    errno.EACCES: STORAGE_PERMISSION,
    errno.EPERM: STORAGE_PERMISSION,
    errno.ENOSPC: STORAGE_FULL,
    errno.EDQUOT: STORAGE_QUOTA,
    errno.EROFS: STORAGE_READ_ONLY,
    errno.ENOTDIR: STORAGE_NOT_A_FOLDER,
}


def storage_problem(exc: BaseException) -> str | None:
    """The plain sentence for a permanent storage error (permission denied, disk full, quota, read-only file
    system, a folder that is a file), or None for anything else. Only an OS error counts (it has an errno):
    a PermissionError raised by our own checks (a run of another user) is not the storage's fault."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return _STORAGE_ERRNOS.get(exc.errno)
    return None


def storage_refusal(exc: BaseException) -> ApplicationError | None:
    """A permanent storage error as a non-retryable failure with a plain message (no path), or None."""
    sentence = storage_problem(exc)
    return None if sentence is None else ApplicationError(sentence, type=STORAGE_UNUSABLE, non_retryable=True)


def child_died(exc: Exception) -> ApplicationError:
    """A fit process that died (out of memory, killed): retryable, with a message a user can read that says whether
    it is tried again (the last attempt's message is what a failed run shows)."""
    info = activity.info()
    limit = info.retry_policy.maximum_attempts if info.retry_policy else 0
    again = "That was its last attempt." if limit and info.attempt >= limit else "It will be retried."
    return ApplicationError(f"{exc} {again}", type="FitProcessDied")


# --- what a user reads -------------------------------------------------------------------------------

# A heartbeat timeout only says the server heard nothing from the step in time: the worker may have stopped,
# or the server itself could not be reached (a hung Temporal times out every heartbeat it missed).
STOPPED_RESPONDING = (
    "This step stopped responding: its worker may have been stopped or overloaded, or the training engine "
    "(Temporal) could not be reached; it was retried."
)
TIMEOUTS = {
    TimeoutType.HEARTBEAT: STOPPED_RESPONDING,
    TimeoutType.START_TO_CLOSE: "This step ran longer than its time limit.",
    TimeoutType.SCHEDULE_TO_START: "No worker picked this step up in time.",
    TimeoutType.SCHEDULE_TO_CLOSE: "This step did not finish within its time limit.",
}
CANCELLED = "It was cancelled."
UNKNOWN = "It failed without saying why; the details are in the worker's log."

# Temporal's own words (as they reach a page in stored text) -> plain sentences. Whole messages: the first
# pattern found anywhere in the text gives the sentence.
_JARGON = [
    (re.compile(r"\bactivity\s+heartbeat\s+timeout", re.I), TIMEOUTS[TimeoutType.HEARTBEAT]),
    (re.compile(r"\bactivity\s+start\s*to\s*close\s+timeout", re.I), TIMEOUTS[TimeoutType.START_TO_CLOSE]),
    (re.compile(r"\bactivity\s+schedule\s*to\s*start\s+timeout", re.I), TIMEOUTS[TimeoutType.SCHEDULE_TO_START]),
    (re.compile(r"\bactivity\s+schedule\s*to\s*close\s+timeout", re.I), TIMEOUTS[TimeoutType.SCHEDULE_TO_CLOSE]),
    (re.compile(r"^\s*activity task timed out\s*$", re.I), "A step of the run took too long."),
    (re.compile(r"^\s*activity task failed\s*$", re.I), "A step of the run failed."),
    (re.compile(r"^\s*child workflow execution failed\s*$", re.I), "A run of the batch failed."),
    (re.compile(r"^\s*workflow execution failed\s*$", re.I), "The run failed."),
    (re.compile(r"^\s*workflow execution already started\s*$", re.I), "It has already been started."),
    (re.compile(r"^\s*(activity|workflow|child workflow)( task| execution)? cancell?ed\s*$", re.I), CANCELLED),
    (re.compile(r"^\s*workflow (execution )?timed out\s*$", re.I), "It ran longer than its time limit."),
    (re.compile(r"^\s*workflow (execution )?terminated\s*$", re.I), "It was stopped by an administrator."),
]
# An exception's class name in front of its message ("InvalidInput: ", "ValueError: ", "RuntimeError: ..."):
# CamelCase words (two or more parts), or a bare Exception/Error, with an optional module path.
_CLASS_PREFIX = re.compile(r"^\s*(?:[a-z_][\w]*\.)*(?:(?:[A-Z][a-z0-9]+){2,}|[A-Z]+[a-z0-9]*Error|Exception|Error)\s*:\s+")


def plain_text(text: str | None) -> str:
    """A failure message as a user reads it: class-name prefixes dropped, Temporal's phrases in plain words.
    Also for text stored by runs that failed before this mapping existed."""
    text = (text or "").strip()
    while (match := _CLASS_PREFIX.match(text)) is not None:
        text = text[match.end() :]
    for pattern, sentence in _JARGON:
        if pattern.search(text):
            return sentence
    return text or UNKNOWN


def plain_failure(err: BaseException) -> str:
    """The sentence for a failure chain (workflow -> child -> activity -> cause): a timeout or a cancel says so
    in plain words (the last attempt's own error is older news); otherwise the innermost message, plain."""
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and len(chain) < 50:
        chain.append(cause)
        cause = getattr(cause, "cause", None)
    for link in chain:
        if isinstance(link, TimeoutError) and link.type in TIMEOUTS:
            return TIMEOUTS[link.type]
        if isinstance(link, CancelledError):
            return CANCELLED
    innermost = chain[-1]
    return plain_text(innermost.message if isinstance(innermost, FailureError) else str(innermost))
