"""core.storage: every path is built from validated ids and stays under the root."""

from __future__ import annotations

import os

import pytest

from core.names import InvalidName, new_run_id
from core.storage import Storage, link_private, write_atomic, write_atomic_at, write_atomic_with, write_private

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


@pytest.fixture
def full_folder(tmp_path):
    """A real full file system: a 64 KiB tmpfs filled to the last byte (root and mount needed)."""
    from chaos.disk_full import NEEDS_MOUNT, full_disk, mount_works

    if not mount_works(tmp_path):
        pytest.skip(f"a full disk cannot be made here: {NEEDS_MOUNT}")
    with full_disk(tmp_path / "full") as folder:
        yield folder


@pytest.mark.parametrize("write", ["write_atomic", "write_atomic_with", "write_private", "copy_private"])
def test_a_write_that_fails_on_a_full_disk_leaves_no_temporary_file(full_folder, tmp_path, write):
    import errno

    from chaos.disk_full import contents
    from core import storage as core_storage

    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(256 * 1024))
    target = full_folder / "models" / "m1" / "model.skops" if write != "write_private" else full_folder / "secret"
    calls = {
        "write_atomic": lambda: core_storage.write_atomic(target, source.read_bytes()),
        "write_atomic_with": lambda: core_storage.write_atomic_with(target, lambda fh: fh.write(source.read_bytes())),
        "write_private": lambda: core_storage.write_private(target, "x" * 200_000),
        "copy_private": lambda: core_storage.copy_private(source, target),
    }
    with pytest.raises(OSError) as raised:
        calls[write]()
    assert raised.value.errno == errno.ENOSPC
    assert contents(full_folder) == set(), "the failed write left something behind (a .tmp file, its new folders)"
    assert not target.exists()


def test_old_tmp_leftovers_in_users_folders_are_swept_and_fresh_ones_kept(storage):
    import time

    from core.storage import sweep_tmp_files

    old = [
        storage.upload_dir("ann") / "a.csv.1.2.tmp",
        storage.user_dir("ann") / "models" / "m1" / "model.skops.1.2.tmp",
        storage.datasets_dir("bob") / DATASET_ID / "data.parquet.3.4.tmp",
    ]
    fresh = storage.upload_dir("ann") / "b.csv.5.6.tmp"
    elsewhere = storage.root / "state" / "old.tmp"  # not a user's uploads, models or datasets folder
    kept = storage.upload_dir("ann") / "c.csv"
    for path in [*old, fresh, elsewhere, kept]:
        write_atomic(path, b"x")
    hours_ago = time.time() - 2 * 3600
    for path in [*old, elsewhere, kept]:
        os.utime(path, (hours_ago, hours_ago))
    assert sorted(sweep_tmp_files(storage)) == sorted(old)
    assert not any(p.exists() for p in old)
    assert fresh.exists() and elsewhere.exists() and kept.exists()


def _half_then_full_disk(write):
    write(b"half")
    raise OSError(28, "No space left on device")


WRITERS = {  # (how it writes, a writer of b"onetwo", one that fails half way)
    "by its path": (
        write_atomic_at,  # a writer that opens the file as it likes (pyarrow's)
        lambda tmp: tmp.open("wb").write(b"onetwo"),
        lambda tmp: _half_then_full_disk(tmp.write_bytes),
    ),
    "streamed": (
        write_atomic_with,  # written piece by piece into the open file (a model's zip)
        lambda fh: [fh.write(part) for part in (b"one", b"two")],
        lambda fh: _half_then_full_disk(fh.write),
    ),
}


@pytest.mark.parametrize("how", WRITERS)
def test_a_written_file_is_private_whatever_the_umask_and_nothing_is_left_on_failure(tmp_path, how):
    write_atomic_by, writer, failing = WRITERS[how]
    path = tmp_path / "new" / "model.skops"
    old = os.umask(0)
    try:
        write_atomic_by(path, writer)
    finally:
        os.umask(old)
    assert path.read_bytes() == b"onetwo" and os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    with pytest.raises(OSError, match="No space"):
        write_atomic_by(path, failing)
    assert path.read_bytes() == b"onetwo" and sorted(p.name for p in path.parent.iterdir()) == ["model.skops"]


def test_a_private_file_is_handed_over_by_a_link_and_any_other_is_copied(tmp_path):
    """A run's model file goes to the registry without a copy of its bytes; the registry's file stays whole and
    private when the run's name is deleted, and a file that is not 0600 is copied (a link would share its mode)."""
    source = tmp_path / "run" / "model.skops"
    write_atomic(source, b"model bytes")
    target = tmp_path / "registry" / "m" / "model.skops"
    link_private(source, target)
    assert os.stat(target).st_ino == os.stat(source).st_ino  # one file, two names: nothing was copied
    assert os.stat(target).st_mode & 0o777 == 0o600 and os.stat(target.parent).st_mode & 0o777 == 0o700
    source.unlink()  # the run's scratch files go after registering
    assert target.read_bytes() == b"model bytes"
    link_private(target, target.with_name("again.skops"))  # a name taken already is replaced, as a copy replaces it
    shared = tmp_path / "shared.bin"
    shared.write_bytes(b"readable by others")
    shared.chmod(0o644)
    link_private(shared, target)
    assert os.stat(target).st_ino != os.stat(shared).st_ino and os.stat(target).st_mode & 0o777 == 0o600
    assert target.read_bytes() == b"readable by others" and os.stat(shared).st_mode & 0o777 == 0o644


def test_a_file_that_cannot_be_linked_is_copied(tmp_path, monkeypatch):
    """Another file system (EXDEV), a link limit or a file system without links: the bytes are copied instead."""
    import errno

    from core import storage as core_storage

    def no_links(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(core_storage.os, "link", no_links)
    source = tmp_path / "model.skops"
    write_atomic(source, b"model bytes")
    target = tmp_path / "registry" / "model.skops"
    link_private(source, target)
    assert target.read_bytes() == b"model bytes" and os.stat(target).st_ino != os.stat(source).st_ino
    assert os.stat(target).st_mode & 0o777 == 0o600 and [p.name for p in target.parent.iterdir()] == ["model.skops"]
    with pytest.raises(FileNotFoundError):  # a missing file still fails, as a copy of it did
        link_private(tmp_path / "gone.skops", target)
