"""core.staged_parquet: the Parquet written while the ingest goes on is kept private, or leaves nothing behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

import core.datasets as datasets
import core.staged_parquet as staged_parquet
from core.datasets import ingest_csv
from core.staged_parquet import StagedParquet
from core.storage import Storage, sweep_tmp_files
from tests.helpers import classification_csv


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "home")


FRAME = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})


def _files(storage):
    return sorted(p.relative_to(storage.root) for p in storage.root.rglob("*") if p.is_file())


def test_a_kept_file_is_the_frames_parquet_and_private(storage, tmp_path):
    target = storage.dataset_dir("alice", "0123456789abcdef") / "data.parquet"
    with StagedParquet(storage, "alice", FRAME) as staged:
        staged.keep(target)
    FRAME.to_parquet(tmp_path / "expected.parquet", index=False)
    assert target.read_bytes() == (tmp_path / "expected.parquet").read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert _files(storage) == [target.relative_to(storage.root)]


def test_a_file_not_kept_is_deleted(storage):
    with StagedParquet(storage, "alice", FRAME):
        pass
    assert _files(storage) == []


def test_a_temporary_name_is_one_the_sweep_of_leftovers_finds(storage):
    staged = StagedParquet(storage, "alice", FRAME)
    staged._written.result()
    assert sweep_tmp_files(storage, max_age=-1) == [staged.path]


ON_ONE_CORE = pytest.mark.parametrize("spare_core", [0.0, 99.0], ids=["beside_the_scan", "after_it"])


@ON_ONE_CORE
def test_a_staged_file_gives_the_dataset_of_its_bytes_whether_written_beside_the_scan_or_after(
    spare_core, storage, tmp_path, monkeypatch
):
    monkeypatch.setattr(datasets, "SPARE_CORE", spare_core)  # the cores the parse must have used to write beside
    data = classification_csv(rows=300)
    (tmp_path / "up.csv").write_bytes(data)
    from_file = ingest_csv(storage, "alice", tmp_path / "up.csv", "up.csv", 2**20)
    from_bytes = ingest_csv(Storage(tmp_path / "b"), "alice", data, "up.csv", 2**20)
    assert {**vars(from_file), "created_at": ""} == {**vars(from_bytes), "created_at": ""}
    stored = [s.dataset_dir("alice", from_file.dataset_id) / "data.parquet" for s in (storage, Storage(tmp_path / "b"))]
    assert stored[0].read_bytes() == stored[1].read_bytes()
    assert len(_files(storage)) == 2


@ON_ONE_CORE
def test_a_failed_write_leaves_nothing_and_fails_the_ingest(spare_core, storage, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "SPARE_CORE", spare_core)

    def full_disk(table, path):
        path.write_bytes(b"PAR1")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(staged_parquet, "write_parquet", full_disk)
    (tmp_path / "up.csv").write_bytes(classification_csv(rows=50))
    with pytest.raises(OSError, match="No space left"):  # not the user's fault: Temporal retries the activity
        ingest_csv(storage, "alice", tmp_path / "up.csv", "up.csv", 2**20)
    assert _files(storage) == []


def test_a_file_stored_before_leaves_no_second_copy(storage, tmp_path):
    (tmp_path / "up.csv").write_bytes(classification_csv(rows=50))
    first = ingest_csv(storage, "alice", tmp_path / "up.csv", "up.csv", 2**20)
    files = _files(storage)
    assert ingest_csv(storage, "alice", tmp_path / "up.csv", "again.csv", 2**20) == first
    assert _files(storage) == files


@pytest.mark.parametrize("root", [os.fsdecode(b"home-\xe9"), "c2:home"], ids=["named_in_latin1", "relative_like_a_uri"])
def test_a_storage_root_of_any_name_stores_the_frames_parquet_privately(root, tmp_path, monkeypatch):
    """pyarrow reads a path given as text as UTF-8 (a folder named in Latin-1 cannot be written) and as a URI
    when it starts like one ("c2:..."): the file is opened by the path's own bytes, read as nothing else."""
    monkeypatch.chdir(tmp_path)
    storage = Storage(Path(root))
    target = storage.dataset_dir("alice", "0123456789abcdef") / "data.parquet"
    old = os.umask(0)
    try:
        with StagedParquet(storage, "alice", FRAME) as staged:
            staged.keep(target)
    finally:
        os.umask(old)
    FRAME.to_parquet(tmp_path / "expected.parquet", index=False)
    assert target.read_bytes() == (tmp_path / "expected.parquet").read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and _files(storage) == [target.relative_to(storage.root)]
