"""Files under the storage root are private (0600 files, 0700 folders) whatever the process umask."""

from __future__ import annotations

import os
import stat

import pytest

from core.db import open_db
from core.registry import Registry
from core.storage import Storage, copy_private, private_umask, write_atomic, write_private


@pytest.fixture
def open_umask():
    """A process started without the launcher: umask 022, files world-readable by default."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_atomic_makes_private_files_and_folders(tmp_path, open_umask):
    target = tmp_path / "a" / "b" / "data.parquet"
    write_atomic(target, b"x")
    assert _mode(target) == 0o600
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700


def test_write_atomic_narrows_an_existing_file(tmp_path, open_umask):
    target = tmp_path / "f"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_atomic(target, b"new")
    assert _mode(target) == 0o600 and target.read_bytes() == b"new"


def test_write_private_and_copy_private(tmp_path, open_umask):
    write_private(tmp_path / "s" / "secret", "k")
    (tmp_path / "src").write_bytes(b"model")
    copy_private(tmp_path / "src", tmp_path / "c" / "model.skops")
    assert _mode(tmp_path / "s" / "secret") == 0o600 and _mode(tmp_path / "s") == 0o700
    assert _mode(tmp_path / "c" / "model.skops") == 0o600 and (tmp_path / "c" / "model.skops").read_bytes() == b"model"


def test_registry_files_are_private(tmp_path, open_umask):
    model = tmp_path / "model.skops"
    model.write_bytes(b"m")
    registry = Registry(Storage(tmp_path / "home"))
    record = registry.register("alice", "rf", "train-alice-" + "1" * 32, model, {})
    folder = registry.model_dir(record)
    assert _mode(registry.model_file(record)) == 0o600 and _mode(folder / "card.json") == 0o600
    assert all(_mode(p) == 0o700 for p in [folder, *folder.parents] if p.is_relative_to(tmp_path / "home"))


def test_app_database_is_private(tmp_path, open_umask):
    path = tmp_path / "home" / "app.db"
    with open_db(path) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
        assert _mode(path) == 0o600
        assert all(_mode(p) == 0o600 for p in tmp_path.glob("home/app.db-*"))
    assert _mode(tmp_path / "home") == 0o700


def test_private_umask_returns_the_previous_one(open_umask):
    assert private_umask() == 0o022
    assert os.umask(0o022) == 0o077
