"""A worker started on its own (`python -m workers`, not by the launcher) keeps the stored files private."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

from core.accounts import User
from tests.helpers import classification_csv, start_worker_process, stop_processes, wait_for_workers


def _umask_of(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    return None  # kernels before 4.7 do not show it


async def test_standalone_worker_writes_private_files(client, settings, service):
    address = client.service_client.config.target_host
    old = os.umask(0o022)  # a shell's usual umask: files world-readable unless the worker narrows it
    try:
        proc = start_worker_process(settings, address)
    finally:
        os.umask(old)
    try:
        await wait_for_workers(client, settings, 1)
        assert _umask_of(proc.pid) in (0o077, None)
        user = User(f"modes_{uuid.uuid4().hex[:6]}")
        ds = await service.upload_dataset(user, "shop.csv", classification_csv(rows=50))
    finally:
        stop_processes(proc)
    stored = settings.home / "users" / user.name
    files = [p for p in stored.rglob("*") if p.is_file()]
    folders = [stored, *(p for p in stored.rglob("*") if p.is_dir())]
    assert any(ds.dataset_id in str(p) for p in files)
    loose = {
        str(p.relative_to(settings.home)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in files + folders
        if p.stat().st_mode & 0o077
    }
    assert loose == {}, f"group/world can read: {loose}"
