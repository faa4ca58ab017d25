"""Permanent storage errors classified once (orchestration.activity_errors, orchestration.storage_errors), the
upload staging's plain refusal, and the scratch clean-up and sweep of orchestration.scratch (no server)."""

from __future__ import annotations

import errno
import os
import time
from types import SimpleNamespace

import pytest
from temporalio.exceptions import ApplicationError

import orchestration.data_task_calls as data_task_module
from core.accounts import User
from core.names import new_run_id
from core.storage import Storage
from orchestration.activity_errors import (
    STORAGE_FULL,
    STORAGE_NOT_A_FOLDER,
    STORAGE_PERMISSION,
    STORAGE_QUOTA,
    STORAGE_READ_ONLY,
    STORAGE_UNUSABLE,
    storage_problem,
    storage_refusal,
)
from orchestration.errors import UserError
from orchestration.scratch import TemporalUnreachable, clean_run_dir, sweep_scratch
from orchestration.service import TrainEasyService
from orchestration.storage_errors import _Inbound

PATH = "/srv/traineasy/users/alice/runs/x"


@pytest.mark.parametrize(
    ("exc", "sentence"),
    [
        (PermissionError(errno.EACCES, "Permission denied", PATH), STORAGE_PERMISSION),
        (PermissionError(errno.EPERM, "Operation not permitted", PATH), STORAGE_PERMISSION),
        (OSError(errno.ENOSPC, "No space left on device", PATH), STORAGE_FULL),
        (OSError(errno.EDQUOT, "Disk quota exceeded", PATH), STORAGE_QUOTA),
        (OSError(errno.EROFS, "Read-only file system", PATH), STORAGE_READ_ONLY),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", PATH), STORAGE_NOT_A_FOLDER),
    ],
)
def test_a_permanent_storage_error_is_refused_at_once_in_plain_words(exc, sentence):
    assert storage_problem(exc) == sentence
    refusal = storage_refusal(exc)
    assert isinstance(refusal, ApplicationError) and refusal.non_retryable and refusal.type == STORAGE_UNUSABLE
    assert refusal.message == sentence and "/srv" not in refusal.message and "Error" not in refusal.message


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(errno.ENOENT, "No such file", PATH),  # may be another writer's rename: retried
        OSError(errno.EIO, "Input/output error", PATH),
        PermissionError("run belongs to another user"),  # our own check, not the storage's fault
        ValueError("bad"),
    ],
)
def test_other_errors_are_left_to_the_retry_policy(exc):
    assert storage_problem(exc) is None and storage_refusal(exc) is None


class _Next:
    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc

    async def execute_activity(self, input):
        if self.exc is not None:
            raise self.exc
        return "done"


async def test_the_worker_interceptor_turns_a_stage_permission_error_into_a_non_retryable_failure():
    inbound = _Inbound(_Next(PermissionError(errno.EACCES, "Permission denied", PATH)))  # type: ignore[arg-type]
    with pytest.raises(ApplicationError) as caught:
        await inbound.execute_activity(None)  # type: ignore[arg-type]
    assert caught.value.non_retryable and caught.value.message == STORAGE_PERMISSION
    assert caught.value.__cause__ is None and PATH not in str(caught.value)
    with pytest.raises(FileNotFoundError):  # anything else passes through untouched, for the retry policy
        await _Inbound(_Next(FileNotFoundError(errno.ENOENT, "gone", PATH))).execute_activity(None)  # type: ignore[arg-type]
    assert await _Inbound(_Next(None)).execute_activity(None) == "done"  # type: ignore[arg-type]


def test_staging_an_upload_on_an_unwritable_storage_is_a_plain_refusal(tmp_path, monkeypatch):
    def denied(path, data):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(data_task_module, "write_atomic", denied)
    fake = SimpleNamespace(storage=Storage(tmp_path))
    with pytest.raises(UserError) as caught:
        TrainEasyService._stage_upload(fake, User("alice"), b"a,b\n1,2\n")  # type: ignore[arg-type]
    assert str(caught.value) == STORAGE_PERMISSION and str(tmp_path) not in str(caught.value)

    def other(path, data):
        raise FileNotFoundError(errno.ENOENT, "gone", str(path))

    monkeypatch.setattr(data_task_module, "write_atomic", other)
    with pytest.raises(FileNotFoundError):  # not a storage fault a user can name: not dressed up as one
        TrainEasyService._stage_upload(fake, User("alice"), b"a")  # type: ignore[arg-type]


# --- scratch files ----------------------------------------------------------------------------------


def _run(storage: Storage, owner: str = "alice", *names: str, age: float = 0) -> str:
    run_id = new_run_id("train", owner)
    folder = storage.run_dir(owner, run_id)
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(b"x")
    if age:
        then = time.time() - age
        os.utime(folder, (then, then))
    return run_id


def _names(storage: Storage, run_id: str) -> set[str]:
    folder = storage.run_dir("alice", run_id)
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


SCRATCH = ("split.npz", "checkpoint.json", "checkpoint-12.skops", "model.skops", "cv.json", "fit.json", "model.skops.1.2.tmp")


def test_cleaning_a_run_keeps_only_its_evaluation(tmp_path):
    storage = Storage(tmp_path)
    kept = _run(storage, "alice", *SCRATCH, "evaluation.json")
    assert sorted(clean_run_dir(storage.run_dir("alice", kept))) == sorted(SCRATCH)
    assert _names(storage, kept) == {"evaluation.json"}
    gone = _run(storage, "alice", *SCRATCH)
    clean_run_dir(storage.run_dir("alice", gone))
    assert not storage.run_dir("alice", gone).exists(), "an empty folder goes too"
    assert clean_run_dir(storage.run_dir("alice", gone)) == []  # idempotent


async def test_the_sweep_cleans_closed_and_old_unknown_runs_and_never_an_open_one(tmp_path):
    storage = Storage(tmp_path)
    open_run = _run(storage, "alice", *SCRATCH, age=30 * 24 * 3600)  # old, but Temporal says it is running
    closed = _run(storage, "alice", *SCRATCH, "evaluation.json")
    unknown_old = _run(storage, "alice", *SCRATCH, age=30 * 24 * 3600)
    unknown_young = _run(storage, "alice", *SCRATCH)
    done = _run(storage, "alice", "evaluation.json")  # nothing to clean: Temporal is not even asked
    answers = {open_run: True, closed: False, unknown_old: None, unknown_young: None}
    asked: list[str] = []

    async def is_open(run_id: str) -> bool | None:
        asked.append(run_id)
        return answers[run_id]

    cleaned = await sweep_scratch(storage, is_open, max_age_seconds=7 * 24 * 3600)
    assert sorted(cleaned) == sorted([closed, unknown_old])
    assert _names(storage, open_run) == set(SCRATCH), "a running run keeps its checkpoint"
    assert _names(storage, closed) == {"evaluation.json"}
    assert not storage.run_dir("alice", unknown_old).exists()
    assert _names(storage, unknown_young) == set(SCRATCH)
    assert done not in asked


async def test_the_sweep_removes_nothing_when_temporal_cannot_be_reached(tmp_path):
    storage = Storage(tmp_path)
    runs = [_run(storage, "alice", *SCRATCH, age=30 * 24 * 3600) for _ in range(3)]

    async def unreachable(run_id: str) -> bool | None:
        raise TemporalUnreachable("connection refused")

    assert await sweep_scratch(storage, unreachable, max_age_seconds=0) == []
    assert all(_names(storage, r) == set(SCRATCH) for r in runs)
