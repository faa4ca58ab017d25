"""The storage root layout. Every path is built here from validated ids, never from raw user input."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from core.names import check_dataset_id, check_username, parse_run_id


@dataclass(frozen=True)
class Storage:
    root: Path

    # app state
    @property
    def auth_dir(self) -> Path:
        return self.root / "auth"

    @property
    def app_db(self) -> Path:
        return self.root / "app.db"

    @property
    def temporal_db(self) -> Path:
        return self.root / "temporal" / "temporal.db"

    @property
    def demo_accounts_file(self) -> Path:
        return self.root / "demo-accounts.txt"

    # per user
    def user_dir(self, owner: str) -> Path:
        return self.root / "users" / check_username(owner)

    def upload_dir(self, owner: str) -> Path:
        return self.user_dir(owner) / "uploads"

    def datasets_dir(self, owner: str) -> Path:
        return self.user_dir(owner) / "datasets"

    def dataset_dir(self, owner: str, dataset_id: str) -> Path:
        return self.datasets_dir(owner) / check_dataset_id(dataset_id)

    def run_dir(self, owner: str, run_id: str) -> Path:
        _, run_owner = parse_run_id(run_id)
        if run_owner != owner:
            raise PermissionError("run belongs to another user")
        return self.user_dir(owner) / "runs" / run_id


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only (mode 0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")   # unique per writer thread
    tmp.write_bytes(data)
    os.replace(tmp, path)
