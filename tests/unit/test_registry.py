"""The model registry on a real SQLite file: versions per lineage, idempotence, isolation, delete, the
in-place migration of an older registry, and retention (preview, then exactly that deleted)."""

from __future__ import annotations

import itertools
import json
import sqlite3

import pytest

from core.registry import Registry
from core.retention import RetentionError, plan_retention
from core.storage import Storage

_runs = itertools.count(1)


@pytest.fixture
def registry(tmp_path):
    return Registry(Storage(tmp_path))


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.skops"
    path.write_bytes(b"x" * 1000)
    return path


def card(dataset="d1", target="y", name="shop.csv"):
    return {"dataset": {"id": dataset, "name": name}, "target": target, "task": "classification", "metrics": {}}


def train(registry, model_file, owner="alice", name="rf", dataset="d1", target="y", tags=()):
    """Register one more version, as the register_model activity does after a run."""
    run_id = f"train-{owner}-{next(_runs):032x}"
    return registry.register(owner, name, run_id, model_file, card(dataset, target), tags)


def test_versions_count_per_dataset_target_and_model(registry, model_file):
    a1, a2 = train(registry, model_file), train(registry, model_file)
    other_dataset = train(registry, model_file, dataset="d2")
    other_target = train(registry, model_file, target="z")
    other_model = train(registry, model_file, name="lr")
    bob = train(registry, model_file, owner="bob")
    assert (a1.version, a2.version) == (1, 2)
    assert other_dataset.version == other_target.version == other_model.version == bob.version == 1
    assert (a2.dataset_id, a2.target, a2.lineage) == ("d1", "y", ("d1", "y", "rf"))
    assert a2.card["version"] == 2 and a2.card["name"] == "rf"
    # two "rf v1" (datasets d1 and d2) keep separate files
    assert registry.model_file(a1) != registry.model_file(other_dataset)
    assert registry.model_file(a1).read_bytes() == registry.model_file(other_dataset).read_bytes() == model_file.read_bytes()


def test_what_pages_read_of_the_card_is_typed_and_the_card_is_kept_as_written(registry, model_file):
    written = {
        **card(),
        "model_label": "Random forest (classification)",
        "metrics": {"accuracy": 0.9, "balanced_accuracy": 0.85},
        "input_schema": [{"name": "age", "kind": "numeric"}, {"name": "city", "kind": "categorical"}],
        "versions": {"python": "3.11.2", "scikit-learn": "1.9.1"},
        "skops_trusted": ["numpy.asarray"],
        "fit_seconds": 1.5,
        "cpu_seconds": 1.2,
    }
    rec = registry.register("alice", "rf", "train-alice-" + "c" * 32, model_file, written)
    assert (rec.model_label, rec.task, rec.target, rec.dataset_name) == (
        "Random forest (classification)",
        "classification",
        "y",
        "shop.csv",
    )
    assert rec.metrics == {"accuracy": 0.9, "balanced_accuracy": 0.85}
    assert rec.feature_columns == ["age", "city"] and rec.input_schema == written["input_schema"]
    assert rec.costs == {"fit_seconds": 1.5, "cpu_seconds": 1.2}  # no peak_rss_mb on this card
    assert rec.library_versions == {"python": "3.11.2", "scikit-learn": "1.9.1"} and rec.skops_trusted == ["numpy.asarray"]
    on_disk = json.loads((registry.model_file(rec).parent / "card.json").read_text())
    assert on_disk == rec.card == {**written, "name": "rf", "version": 1}  # the file users download: unchanged


def test_a_card_from_before_the_fields_it_lacks_reads_as_nothing(registry, model_file):
    rec = registry.register("alice", "rf", "train-alice-" + "d" * 32, model_file, {"dataset": {"id": "d1"}, "target": "y"})
    assert (rec.model_label, rec.task, rec.metrics, rec.costs, rec.feature_columns) == (None, "", {}, {}, [])
    assert rec.skops_trusted is None and rec.library_versions == {} and rec.dataset_name == "d1"


def test_dataset_and_target_given_explicitly_win_over_the_card(registry, model_file):
    rec = registry.register("alice", "rf", "train-alice-" + "e" * 32, model_file, {}, dataset_id="d9", target="t")
    assert rec.lineage == ("d9", "t", "rf") and rec.version == 1


def test_registering_a_run_twice_is_one_version(registry, model_file):
    run = "train-alice-" + "a" * 32
    first = registry.register("alice", "rf", run, model_file, card())
    again = registry.register("alice", "rf", run, model_file, card())
    assert first.id == again.id and len(registry.list("alice")) == 1


def test_a_run_id_or_model_name_that_cannot_be_a_folder_is_refused(registry, model_file):
    with pytest.raises(ValueError):
        registry.register("alice", "rf", "../../etc", model_file, card())
    with pytest.raises(ValueError):
        registry.register("alice", "rf", "train-bob-" + "1" * 32, model_file, card())
    with pytest.raises(ValueError):
        registry.register("alice", "../x", "train-alice-" + "1" * 32, model_file, card())
    assert registry.list("alice") == []


def test_users_only_see_their_own_models(registry, model_file):
    rec = train(registry, model_file)
    assert registry.list("bob") == []
    assert registry.get("bob", rec.id) is None
    assert registry.delete("bob", rec.id) == 0
    assert registry.trained_on("bob", "d1") == []
    assert registry.get("alice", rec.id) is not None


def test_delete_removes_files_and_record_and_reports_bytes(registry, model_file):
    rec = train(registry, model_file)
    folder = registry.model_dir(rec)
    assert folder.is_dir()
    assert registry.delete("alice", rec.id) >= 1000
    assert not folder.exists() and registry.get("alice", rec.id) is None


def test_trained_on_lists_the_models_of_one_dataset(registry, model_file):
    on_d1 = [train(registry, model_file), train(registry, model_file, name="lr")]
    train(registry, model_file, dataset="d2")
    assert {m.id for m in registry.trained_on("alice", "d1")} == {m.id for m in on_d1}


# --- migration of a registry written before versions were counted per lineage ---------------------
OLD_SCHEMA = """
CREATE TABLE models (
    id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    run_id TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]', card TEXT NOT NULL, UNIQUE (owner, name, version)
);
CREATE INDEX models_owner ON models (owner, name);
CREATE TABLE user_settings (owner TEXT PRIMARY KEY, keep_last INTEGER);
"""


def _old_registry(storage: Storage) -> None:
    """rf v1 and v3 trained on d1, rf v2 on d2 (versions counted across datasets), id 4 deleted."""
    storage.app_db.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(storage.app_db)
    db.executescript(OLD_SCHEMA)
    for model_id, version, dataset in ((1, 1, "d1"), (2, 2, "d2"), (3, 3, "d1"), (4, 4, "d1")):
        folder = storage.user_dir("alice") / "models" / "rf" / f"v{version}"
        folder.mkdir(parents=True)
        (folder / "model.skops").write_bytes(f"model {version}".encode())
        db.execute(
            "INSERT INTO models VALUES (?, 'alice', 'rf', ?, ?, '2024-01-01T00:00:00+00:00', 10, ?, ?)",
            (
                model_id,
                version,
                f"train-alice-{model_id:032x}",
                '["best of batch-x"]' if version == 2 else "[]",
                json.dumps(card(dataset)),
            ),
        )
    db.execute("DELETE FROM models WHERE id = 4")
    db.execute("INSERT INTO user_settings VALUES ('alice', 2)")
    db.commit()
    db.close()


def test_an_older_registry_is_migrated_in_place_keeping_ids_versions_and_files(tmp_path, model_file):
    storage = Storage(tmp_path)
    _old_registry(storage)
    registry = Registry(storage)
    models = {m.id: m for m in registry.list("alice")}
    assert sorted(models) == [1, 2, 3]
    assert {i: (m.version, m.dataset_id, m.target) for i, m in models.items()} == {
        1: (1, "d1", "y"),
        2: (2, "d2", "y"),
        3: (3, "d1", "y"),
    }
    assert models[2].tags == ("best of batch-x",)
    assert registry.model_file(models[3]).read_bytes() == b"model 3"  # the files stay where they were
    assert registry.keep_last("alice") == 2
    # the next version of a lineage follows its highest number; a deleted model's id is never reused
    new = train(registry, model_file, dataset="d1")
    assert new.version == 4 and new.id == 5
    assert train(registry, model_file, dataset="d2").version == 3
    # opening it again (another process) changes nothing
    assert [m.id for m in Registry(storage).list("alice")] == [m.id for m in registry.list("alice")]


# --- retention -------------------------------------------------------------------------------------
def test_registering_never_deletes_anything(registry, model_file):
    versions = [train(registry, model_file) for _ in range(3)]
    registry.apply_retention("alice", 1, registry.retention_plan("alice", 1).ids)
    train(registry, model_file)
    train(registry, model_file)
    assert len(registry.list("alice")) == 3
    assert versions[-1].id in {m.id for m in registry.list("alice")}


def test_preview_is_exactly_what_is_deleted(registry, model_file):
    old = [train(registry, model_file) for _ in range(4)]
    plan = registry.retention_plan("alice", 2)
    assert [r.version for r in plan.delete] == [2, 1]
    assert len(registry.list("alice")) == 4, "a preview deletes nothing"
    before = {m.id for m in registry.list("alice")}
    result = registry.apply_retention("alice", 2, plan.ids)
    assert {r.id for r in result.deleted} == plan.ids
    assert before - {m.id for m in registry.list("alice")} == plan.ids
    assert result.freed_bytes >= 2000
    assert not registry.model_dir(old[0]).exists() and registry.model_dir(old[3]).exists()
    assert registry.keep_last("alice") == 2


def test_retention_never_deletes_a_tagged_version(registry, model_file):
    best = train(registry, model_file, tags=("best of batch-alice-1",))
    for _ in range(3):
        train(registry, model_file)
    plan = registry.retention_plan("alice", 1)
    assert best.id not in plan.ids and [r.id for r in plan.tagged] == [best.id]
    registry.apply_retention("alice", 1, plan.ids)
    assert sorted(m.version for m in registry.list("alice")) == [1, 4]


def test_retention_counts_per_dataset_and_target_and_leaves_other_lineages_alone(registry, model_file):
    on_d1 = [train(registry, model_file, dataset="d1") for _ in range(3)]
    only_on_d2 = train(registry, model_file, dataset="d2")
    other_target = [train(registry, model_file, dataset="d1", target="z") for _ in range(2)]
    plan = registry.retention_plan("alice", 1)
    assert plan.ids == {on_d1[0].id, on_d1[1].id, other_target[0].id}
    registry.apply_retention("alice", 1, plan.ids)
    left = {m.id for m in registry.list("alice")}
    assert left == {on_d1[2].id, only_on_d2.id, other_target[1].id}


def test_the_last_version_of_a_lineage_is_never_deleted():
    from core.model_record import ModelRecord

    lone = ModelRecord(1, "alice", "rf", 1, "r", "2024-01-01", 1, (), {}, "d1", "y", "f")
    assert plan_retention([lone], 1).delete == ()
    with pytest.raises(RetentionError):
        plan_retention([lone], 0)


def test_a_confirmation_that_no_longer_matches_deletes_nothing(registry, model_file):
    first = train(registry, model_file)
    run_first = first.run_id
    train(registry, model_file)
    plan = registry.retention_plan("alice", 1)
    assert plan.ids == {first.id}
    registry.add_tag("alice", run_first, "best of batch-alice-2")  # tagged after the preview was shown
    with pytest.raises(RetentionError, match="Nothing was deleted"):
        registry.apply_retention("alice", 1, plan.ids)
    assert len(registry.list("alice")) == 2
    # an id that was never in the preview (another user's, or a kept version) is refused the same way
    bob = train(registry, model_file, owner="bob")
    with pytest.raises(RetentionError):
        registry.apply_retention("alice", 1, {bob.id})
    assert registry.get("bob", bob.id) is not None


def test_confirming_part_of_a_preview_deletes_only_that_part(registry, model_file):
    old = [train(registry, model_file) for _ in range(3)]
    plan = registry.retention_plan("alice", 1)
    result = registry.apply_retention("alice", 1, {old[0].id})
    assert [r.id for r in result.deleted] == [old[0].id] and len(plan.ids) == 2
    assert {m.id for m in registry.list("alice")} == {old[1].id, old[2].id}


def test_retention_refuses_a_keep_outside_its_bounds(registry):
    for keep in (0, -1, 1001, True):
        with pytest.raises(RetentionError):
            registry.retention_plan("alice", keep)


# --- version numbers are never reused ----------------------------------------------------------------
def test_a_deleted_versions_number_is_never_given_again(registry, model_file):
    v1, v2, v3 = (train(registry, model_file) for _ in range(3))
    registry.delete("alice", v3.id)
    assert train(registry, model_file).version == 4  # not a second "rf v3"
    registry.delete("alice", v2.id)
    registry.apply_retention("alice", 1, registry.retention_plan("alice", 1).ids)  # deletes v1
    assert [m.version for m in registry.list("alice")] == [4]
    assert train(registry, model_file).version == 5
    assert train(registry, model_file, dataset="d2").version == 1  # per lineage, as before


def test_a_registry_from_before_the_high_water_mark_keeps_its_numbers_and_goes_on_from_them(tmp_path, model_file):
    storage = Storage(tmp_path)
    first = Registry(storage)
    versions = [train(first, model_file) for _ in range(3)]
    with sqlite3.connect(storage.app_db) as db:  # as a registry written before the mark was kept
        db.execute("DROP TABLE lineage_versions")
    reopened = Registry(storage)  # migrates in place
    assert [m.version for m in reopened.list("alice")] == [3, 2, 1]
    reopened.delete("alice", versions[2].id)
    assert train(reopened, model_file).version == 3  # the highest stored then was 2: v3's deletion was not seen
    reopened.delete("alice", reopened.list("alice")[0].id)
    assert train(reopened, model_file).version == 4  # from now on the mark remembers


def test_a_tag_can_be_taken_off(registry, model_file):
    model = train(registry, model_file, tags=("keep", "best"))
    assert registry.remove_tag("alice", model.id, "keep").tags == ("best",)
    assert registry.remove_tag("bob", model.id, "best") is None  # not bob's
    assert registry.get("alice", model.id).tags == ("best",)


def test_a_deleted_datasets_name_is_remembered(registry, model_file):
    train(registry, model_file, dataset="d1")
    registry.remember_deleted_dataset("alice", "d7", "old sales.csv")
    assert registry.known_dataset_names("alice") == {"d1": "shop.csv", "d7": "old sales.csv"}
    assert registry.known_dataset_names("bob") == {}


@pytest.mark.parametrize("fails", ["card", "record"])
def test_a_register_that_fails_after_taking_the_model_file_leaves_no_files(registry, model_file, monkeypatch, fails):
    """The model file is linked (no space needed: it succeeds on a full disk), then the card or the record fails:
    no record names the folder, so nothing may stay in it (unseen, never swept, counted in the stored bytes)."""
    import errno

    import core.registry as core_registry

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    if fails == "card":
        monkeypatch.setattr(core_registry, "write_atomic", full)
    else:
        monkeypatch.setattr(core_registry, "_size", lambda path: 1 / 0)
    with pytest.raises((OSError, ZeroDivisionError)):
        train(registry, model_file)
    assert registry.list("alice") == []
    models = registry.storage.user_dir("alice") / "models"
    assert not models.exists() or list(models.rglob("*")) == []
    assert model_file.read_bytes() == b"x" * 1000, "the run's own file is untouched"
    monkeypatch.undo()
    assert train(registry, model_file).version == 1, "the number taken by the failed register was rolled back"


def test_a_register_on_a_really_full_disk_leaves_no_files(tmp_path):
    """A real full file system (a tiny tmpfs, root and mount needed) under the user's folder: the hard link takes
    no space and succeeds, the card cannot be written."""
    from chaos.disk_full import FILLER, NEEDS_MOUNT, _fill, contents, full_disk, mount_works
    from core.storage import write_atomic

    if not mount_works(tmp_path):
        pytest.skip(f"a full disk cannot be made here: {NEEDS_MOUNT}")
    storage = Storage(tmp_path / "home")
    registry = Registry(storage)
    user_dir = storage.user_dir("alice")
    run_id = f"train-alice-{next(_runs):032x}"
    source = storage.run_dir("alice", run_id) / "model.skops"
    with full_disk(user_dir):
        (user_dir / FILLER).unlink()
        write_atomic(source, b"x" * 20000)
        _fill(user_dir)
        with pytest.raises(OSError):
            registry.register("alice", "rf", run_id, source, card())
        assert contents(user_dir) == {"runs", f"runs/{run_id}", f"runs/{run_id}/model.skops"}
    assert registry.list("alice") == []
