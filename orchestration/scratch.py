"""A run's scratch files (the split, checkpoints, the model file, fold scores, fit costs) once the run is over.

A run that registered its model deletes them itself (TrainingActivities.register_model); a failed or cancelled
run has them deleted by its workflow (TrainingActivities.discard_scratch); whatever is left (a worker killed, a
run terminated, runs from before) is swept when a worker starts. A run keeps only what its page reads:
evaluation.json (the held-out charts, drawn for a finished run, a failed one too if it got that far).

The sweep never touches a run Temporal still calls open: a retried fit resumes from its checkpoint. Whether a
run is open is asked of Temporal (the run folder's name is the workflow id); unreachable, nothing is swept.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.names import InvalidName, parse_run_id
from core.storage import Storage

if TYPE_CHECKING:
    from temporalio.client import Client

KEEP = frozenset({"evaluation.json"})  # what the run page of a finished (or failed) run reads
# A run folder Temporal no longer knows (its history is past retention) is swept once it is this old.
UNKNOWN_RUN_MAX_AGE_SECONDS = 7 * 24 * 3600


class TemporalUnreachable(Exception):
    """Raised by an `is_open` callback that cannot tell: the sweep stops and removes nothing more."""


def clean_run_dir(run_dir: Path) -> list[str]:
    """Delete a finished run's scratch files (all but KEEP); the folder too if nothing is left. Idempotent.
    Returns the names removed."""
    try:
        entries = list(run_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        if entry.name in KEEP:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    try:
        run_dir.rmdir()  # only if empty
    except OSError:
        pass
    return removed


def _run_dirs(storage: Storage) -> list[Path]:
    users = storage.root / "users"
    try:
        return sorted(p for p in users.glob("*/runs/*") if p.is_dir())
    except OSError:
        return []


async def sweep_scratch(
    storage: Storage,
    is_open: Callable[[str], Awaitable[bool | None]],
    max_age_seconds: float = UNKNOWN_RUN_MAX_AGE_SECONDS,
    now: float | None = None,
) -> list[str]:
    """Clean the folders of runs that are over: closed in Temporal (is_open -> False), or unknown to it
    (None) and older than `max_age_seconds`. A run still open (True) is never touched. If `is_open` raises
    TemporalUnreachable the sweep stops there. Returns the run ids cleaned."""
    now = time.time() if now is None else now
    cleaned = []
    for run_dir in _run_dirs(storage):
        try:
            parse_run_id(run_dir.name)
        except InvalidName:
            continue  # not a folder of ours
        if all(p.name in KEEP for p in run_dir.iterdir()):
            continue  # nothing to clean: no need to ask
        try:
            state = await is_open(run_dir.name)
        except TemporalUnreachable:
            break
        if state is True:
            continue
        if state is None:
            try:
                age = now - run_dir.stat().st_mtime
            except OSError:
                continue
            if age < max_age_seconds:
                continue
        if clean_run_dir(run_dir):
            cleaned.append(run_dir.name)
    return cleaned


def temporal_is_open(client: Client) -> Callable[[str], Awaitable[bool | None]]:
    """`is_open` for sweep_scratch: asks Temporal whether the workflow of this id is still running."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    async def is_open(workflow_id: str) -> bool | None:
        try:
            desc = await client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise TemporalUnreachable(str(err)) from None
        except Exception as err:  # a connection error of another kind: cannot tell, so do not sweep
            raise TemporalUnreachable(str(err)) from None
        return desc.status == WorkflowExecutionStatus.RUNNING

    return is_open
