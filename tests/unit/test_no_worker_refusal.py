"""The refusal of a data task when no worker is alive: while the launcher restarts the workers it says so (try again
in a few seconds), not "start the stack with `make run`" (orchestration/service.py `_data_task`)."""

from __future__ import annotations

import json
import os

import pytest

from core.accounts import User
from core.storage import Storage, write_atomic
from orchestration.errors import UserError
from orchestration.service import TrainEasyService
from tests.helpers import classification_csv, test_settings


def launcher_says(storage: Storage, **states: str) -> None:
    """The launcher's state file, this test process standing in for the launcher."""
    children = {name: {"state": s, "pid": None, "since": None, "restarts": 1} for name, s in states.items()}
    write_atomic(storage.supervisor_state, json.dumps({"launcher_pid": os.getpid(), "children": children}).encode())


@pytest.mark.parametrize(
    ("worker_state", "said"),
    [
        ("restarting", "The worker processes are being restarted, so this cannot be done right now. Try again in a few"),
        ("given-up", "No worker process is running, so this cannot be done right now. Start the stack with `make run`"),
    ],
)
async def test_an_upload_with_no_live_worker_says_whether_the_launcher_is_restarting_them(tmp_path, worker_state, said):
    svc = TrainEasyService(None, test_settings(tmp_path))  # type: ignore[arg-type]  # refused before any Temporal call
    launcher_says(svc.storage, temporal="running", **{"worker-1": worker_state, "streamlit": "running"})
    with pytest.raises(UserError) as refused:
        await svc.upload_dataset(User("alice"), "shop.csv", classification_csv())
    assert str(refused.value).startswith(said)


class _Started(Exception):
    """Raised by the stand-in client: the call went past the refusal and asked Temporal to start the task."""


class _Client:
    async def start_workflow(self, *args: object, **kwargs: object) -> None:
        raise _Started


async def test_with_the_state_folder_unwritable_an_upload_is_tried_not_refused_as_no_worker(tmp_path):
    """The hostile re-check: `chattr +i <home>/state/workers` left no fresh beat file, and an upload was refused
    with "No worker process is running" while two workers ran. Liveness is unknown then: try the task."""
    from chaos.immutable import NEEDS, chattr_works, immutable

    if not chattr_works(tmp_path):
        pytest.skip(f"an unwritable folder cannot be made here: {NEEDS}")
    svc = TrainEasyService(_Client(), test_settings(tmp_path))  # type: ignore[arg-type]
    svc.storage.workers_state.mkdir(parents=True)
    with immutable(svc.storage.workers_state), pytest.raises(_Started):
        await svc.upload_dataset(User("alice"), "shop.csv", classification_csv())
