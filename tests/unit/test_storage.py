"""core.storage: every path is built from validated ids and stays under the root."""

from __future__ import annotations

import os

import pytest

from core.names import InvalidName, new_run_id
from core.storage import Storage, write_atomic, write_private

DATASET_ID = "0123456789abcdef"


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "home")


def _under(path, root) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def test_user_paths_are_under_the_root(storage):
    run_id = new_run_id("train", "alice")
    paths = [
        storage.user_dir("alice"),
        storage.upload_dir("alice"),
        storage.datasets_dir("alice"),
        storage.dataset_dir("alice", DATASET_ID),
        storage.run_dir("alice", run_id),
    ]
    assert all(_under(p, storage.root) for p in paths)
    assert storage.dataset_dir("alice", DATASET_ID).name == DATASET_ID
    assert storage.run_dir("alice", run_id).name == run_id


def test_app_state_paths_are_under_the_root(storage):
    assert all(_under(p, storage.root) for p in (storage.auth_dir, storage.temporal_db, storage.demo_accounts_file))


def test_users_get_separate_folders(storage):
    assert storage.user_dir("alice") != storage.user_dir("bob")


@pytest.mark.parametrize("owner", ["../alice", "..", "Alice", "al/ice", "", "a" * 40])
def test_invalid_username_is_refused(storage, owner):
    with pytest.raises(InvalidName):
        storage.user_dir(owner)
    with pytest.raises(ValueError):
        storage.datasets_dir(owner)


@pytest.mark.parametrize(
    "dataset_id", ["../x", "..", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "/etc/passwd", ""]
)
def test_invalid_dataset_id_is_refused(storage, dataset_id):
    with pytest.raises(InvalidName):
        storage.dataset_dir("alice", dataset_id)


@pytest.mark.parametrize("run_id", ["../../x", "train-alice-../../x", "", "train-alice-" + "g" * 32])
def test_malformed_run_id_is_refused(storage, run_id):
    with pytest.raises(InvalidName):
        storage.run_dir("alice", run_id)


def test_run_dir_refuses_another_users_run(storage):
    with pytest.raises(PermissionError):
        storage.run_dir("alice", new_run_id("train", "bob"))


def test_write_private_creates_an_owner_only_file(tmp_path):
    path = tmp_path / "auth" / "secret"
    write_private(path, "s3cret")
    assert path.read_text() == "s3cret"
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_write_private_tightens_an_existing_world_readable_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new"
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_write_private_leaves_no_temporary_file(tmp_path):
    write_private(tmp_path / "secret", "one")
    write_private(tmp_path / "secret", "two")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]
    assert (tmp_path / "secret").read_text() == "two"


def test_write_atomic_writes_bytes_and_leaves_no_temporary_file(tmp_path):
    write_atomic(tmp_path / "d" / "data.bin", b"\x00\x01")
    assert (tmp_path / "d" / "data.bin").read_bytes() == b"\x00\x01"
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["data.bin"]
