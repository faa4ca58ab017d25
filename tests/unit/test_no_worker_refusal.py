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
