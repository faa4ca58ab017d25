"""The model registry on a real SQLite file: versions, idempotence, isolation, delete, retention."""

from __future__ import annotations

import pytest

from core.registry import Registry
from core.storage import Storage


@pytest.fixture
def registry(tmp_path):
    return Registry(Storage(tmp_path))


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.skops"
    path.write_bytes(b"x" * 1000)
    return path


def test_versions_count_up_per_owner_and_name(registry, model_file):
    a1 = registry.register("alice", "rf", "train-alice-" + "1" * 32, model_file, {"m": 1})
    a2 = registry.register("alice", "rf", "train-alice-" + "2" * 32, model_file, {"m": 2})
    b1 = registry.register("bob", "rf", "train-bob-" + "3" * 32, model_file, {"m": 3})
    other = registry.register("alice", "lr", "train-alice-" + "4" * 32, model_file, {})
    assert (a1.version, a2.version, b1.version, other.version) == (1, 2, 1, 1)
    assert a2.card == {"m": 2, "name": "rf", "version": 2}
    assert registry.model_file(a2).read_bytes() == model_file.read_bytes()


def test_registering_a_run_twice_is_one_version(registry, model_file):
    run = "train-alice-" + "a" * 32
    first = registry.register("alice", "rf", run, model_file, {})
    again = registry.register("alice", "rf", run, model_file, {})
    assert first.id == again.id and len(registry.list("alice")) == 1


def test_users_only_see_their_own_models(registry, model_file):
    rec = registry.register("alice", "rf", "train-alice-" + "b" * 32, model_file, {})
    assert registry.list("bob") == []
    assert registry.get("bob", rec.id) is None
    assert registry.delete("bob", rec.id) == 0
    assert registry.get("alice", rec.id) is not None


def test_delete_removes_files_and_record_and_reports_bytes(registry, model_file):
    rec = registry.register("alice", "rf", "train-alice-" + "c" * 32, model_file, {})
    folder = registry.model_dir("alice", "rf", 1)
    assert registry.delete("alice", rec.id) >= 1000
    assert not folder.exists() and registry.get("alice", rec.id) is None


def test_retention_keeps_the_newest_versions(registry, model_file):
    for i in range(4):
        registry.register("alice", "rf", f"train-alice-{i:032x}", model_file, {})
    freed = registry.set_keep_last("alice", 2)
    assert freed >= 2000
    assert [m.version for m in registry.list("alice")] == [4, 3]
    registry.register("alice", "rf", f"train-alice-{9:032x}", model_file, {})  # applied on register too
    assert [m.version for m in registry.list("alice")] == [5, 4]
    with pytest.raises(ValueError):
        registry.set_keep_last("alice", 0)
