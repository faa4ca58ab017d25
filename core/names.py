"""Validation of every identifier that comes back from a user, a URL or a file name."""

from __future__ import annotations

import re
import unicodedata
import uuid

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
DATASET_ID_RE = re.compile(r"^[0-9a-f]{16}$")
RUN_ID_RE = re.compile(r"^(train|batch|ingest|check|predict)-([a-z][a-z0-9_]{1,31})-([0-9a-f]{32})$")
PREDICTION_FILE_RE = re.compile(r"^[0-9a-f]{16}\.csv$")


class InvalidName(ValueError):
    """An identifier that does not have the expected shape; the message is safe to show."""


def check_username(name: str) -> str:
    if not isinstance(name, str) or not USERNAME_RE.fullmatch(name):
        raise InvalidName("user names are 2-32 characters: lower-case letters, digits and '_', starting with a letter")
    return name


def check_dataset_id(dataset_id: str) -> str:
    if not isinstance(dataset_id, str) or not DATASET_ID_RE.fullmatch(dataset_id):
        raise InvalidName("not a dataset id")
    return dataset_id


def format_run_id(kind: str, owner: str, hex_id: str) -> str:
    """The one shape of a workflow id, `<kind>-<owner>-<32 hex>` (RUN_ID_RE). Pure, so workflow code can
    use it with `workflow.uuid4().hex`."""
    return f"{kind}-{owner}-{hex_id}"


def new_run_id(kind: str, owner: str) -> str:
    return format_run_id(kind, check_username(owner), uuid.uuid4().hex)


def parse_run_id(run_id: str) -> tuple[str, str]:
    """Return (kind, owner) of a well-formed run id, or raise InvalidName."""
    m = RUN_ID_RE.fullmatch(run_id) if isinstance(run_id, str) else None
    if not m:
        raise InvalidName("not a run id")
    return m.group(1), m.group(2)


def display_name(raw: str, fallback: str = "dataset", limit: int = 80) -> str:
    """A user-supplied file name made safe to store and show: no path, no control characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".")
    return name[:limit].strip() or fallback
