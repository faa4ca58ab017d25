"""The model registry: versions per user and lineage (dataset, target, model), in the app database
(SQLite), files beside it.

A record and its files are created and deleted together; registering is idempotent per workflow run,
so a retried activity never makes a second version. Nothing is deleted on its own: retention is a plan
(core.retention) the user sees first and confirms.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.db import open_db, write
from core.names import check_username, parse_run_id
from core.retention import RetentionError, RetentionPlan, check_keep, plan_retention
from core.storage import Storage, copy_private, write_atomic

MODEL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a catalog key: it becomes a folder name
COST_FIELDS = ("fit_seconds", "cpu_seconds", "peak_rss_mb")  # what a fit cost, as the model card records it

# Versions count per (owner, dataset, target, model). `folder` is where the files are, relative to the
# owner's folder: models/<name>/<run id> for new versions, models/<name>/v<version> for those registered
# before versions were counted per dataset (they keep their numbers and their files).
MODELS_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    dataset_id  TEXT NOT NULL DEFAULT '',
    target      TEXT NOT NULL DEFAULT '',
    version     INTEGER NOT NULL,
    run_id      TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    tags        TEXT NOT NULL DEFAULT '[]',
    card        TEXT NOT NULL,
    folder      TEXT NOT NULL,
    UNIQUE (owner, dataset_id, target, name, version)
);
"""
SCHEMA = (
    MODELS_TABLE.format(table="models")
    + """
CREATE TABLE IF NOT EXISTS user_settings (
    owner       TEXT PRIMARY KEY,
    keep_last   INTEGER          -- the N last confirmed for retention (the form's default); NULL: never set
);
"""
)
INDEXES = """
CREATE INDEX IF NOT EXISTS models_owner ON models (owner, name);
CREATE INDEX IF NOT EXISTS models_lineage ON models (owner, dataset_id, target, name, version);
"""


@dataclass(frozen=True)
class ModelRecord:
    id: int
    owner: str
    name: str
    version: int
    run_id: str
    created_at: str
    size_bytes: int
    tags: tuple[str, ...]
    card: dict[str, Any]
    dataset_id: str = ""
    target: str = ""
    folder: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def lineage(self) -> tuple[str, str, str]:
        """What versions are counted per: (dataset id, target, model name)."""
        return (self.dataset_id, self.target, self.name)

    # --- the card, typed: what the pages read of it (its JSON, which users download, stays as it is) ----
    @property
    def dataset_name(self) -> str:
        return str((self.card.get("dataset") or {}).get("name") or self.dataset_id or "?")

    @property
    def model_label(self) -> str | None:
        """The catalog label of the model's type ("Random forest (classification)")."""
        label = self.card.get("model_label")
        return None if label is None else str(label)

    @property
    def task(self) -> str:
        """classification | regression"""
        return str(self.card.get("task") or "")

    @property
    def metrics(self) -> dict[str, float]:
        """The test-set scores, by metric name."""
        return {str(k): float(v) for k, v in (self.card.get("metrics") or {}).items()}

    @property
    def costs(self) -> dict[str, float]:
        """What the fit cost (COST_FIELDS), those the card has."""
        return {k: float(self.card[k]) for k in COST_FIELDS if self.card.get(k) is not None}

    @property
    def input_schema(self) -> list[dict[str, Any]]:
        """Each input column as ml.schema describes it (name, kind...), in order; new rows are conformed to it."""
        return list(self.card.get("input_schema") or [])

    @property
    def feature_columns(self) -> list[str]:
        """The columns the model predicts from, in order (the target is not one of them)."""
        return [str(column["name"]) for column in self.input_schema]

    @property
    def skops_trusted(self) -> list[str] | None:
        """The types to trust when loading the file with skops alone; None for a model saved before files were
        self-contained (it needs TrainEasy's own code to load)."""
        trusted = self.card.get("skops_trusted")
        return None if trusted is None else [str(t) for t in trusted]

    @property
    def library_versions(self) -> dict[str, str]:
        """The versions of Python and the libraries the model was saved with, by name ("scikit-learn")."""
        return {str(k): str(v) for k, v in (self.card.get("versions") or {}).items() if v}


@dataclass(frozen=True)
class RetentionResult:
    deleted: tuple[ModelRecord, ...]
    freed_bytes: int


class Registry:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.path = storage.app_db
        with self._db() as db:
            db.executescript(SCHEMA)
            _migrate(db)
            db.executescript(INDEXES)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with open_db(self.path) as db:
            yield db

    def model_dir(self, record: ModelRecord) -> Path:
        return self.storage.user_dir(record.owner) / record.folder

    def model_file(self, record: ModelRecord) -> Path:
        return self.model_dir(record) / "model.skops"

    @staticmethod
    def _record(row: sqlite3.Row) -> ModelRecord:
        return ModelRecord(
            id=row["id"],
            owner=row["owner"],
            name=row["name"],
            version=row["version"],
            run_id=row["run_id"],
            created_at=row["created_at"],
            size_bytes=row["size_bytes"],
            tags=tuple(json.loads(row["tags"])),
            card=json.loads(row["card"]),
            dataset_id=row["dataset_id"],
            target=row["target"],
            folder=row["folder"],
        )

    def register(
        self,
        owner: str,
        name: str,
        run_id: str,
        model_file: Path,
        card: dict[str, Any],
        tags: tuple[str, ...] = (),
        *,
        dataset_id: str | None = None,
        target: str | None = None,
    ) -> ModelRecord:
        """A new version of (dataset, target, model) for the run, or the one it already registered.
        The dataset and target default to the card's."""
        check_username(owner)
        if not MODEL_NAME_RE.fullmatch(name or ""):
            raise ValueError("not a model name")
        _, run_owner = parse_run_id(run_id)  # the run id becomes a folder name
        if run_owner != owner:
            raise ValueError("the run belongs to another user")
        dataset_id = str(dataset_id if dataset_id is not None else (card.get("dataset") or {}).get("id") or "")
        target = str(target if target is not None else card.get("target") or "")
        with self._db() as db, write(db):  # one writer at a time: versions are numbered without gaps
            row = db.execute("SELECT * FROM models WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                version = db.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM models"
                    " WHERE owner = ? AND dataset_id = ? AND target = ? AND name = ?",
                    (owner, dataset_id, target, name),
                ).fetchone()[0]
                folder = f"models/{name}/{run_id}"
                where = self.storage.user_dir(owner) / folder
                copy_private(model_file, where / "model.skops")  # 0600 in 0700 folders, whatever the umask
                card = {**card, "name": name, "version": version}
                write_atomic(where / "card.json", json.dumps(card, indent=2, default=str).encode())
                db.execute(
                    "INSERT INTO models (owner, name, dataset_id, target, version, run_id, created_at, size_bytes,"
                    " tags, card, folder) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        owner,
                        name,
                        dataset_id,
                        target,
                        version,
                        run_id,
                        datetime.now(UTC).isoformat(timespec="seconds"),
                        _size(where),
                        json.dumps(list(tags)),
                        json.dumps(card, default=str),
                        folder,
                    ),
                )
                row = db.execute("SELECT * FROM models WHERE run_id = ?", (run_id,)).fetchone()
        return self._record(row)

    def _list(self, db: sqlite3.Connection, owner: str) -> list[ModelRecord]:
        rows = db.execute("SELECT * FROM models WHERE owner = ? ORDER BY created_at DESC, id DESC", (owner,)).fetchall()
        return [self._record(r) for r in rows]

    def trained_on(self, owner: str, dataset_id: str) -> list[ModelRecord]:
        """The owner's models trained on a dataset, newest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM models WHERE owner = ? AND dataset_id = ? ORDER BY created_at DESC, id DESC",
                (check_username(owner), dataset_id),
            ).fetchall()
        return [self._record(r) for r in rows]

    def list(self, owner: str) -> list[ModelRecord]:
        with self._db() as db:
            return self._list(db, check_username(owner))

    def get(self, owner: str, model_id: int) -> ModelRecord | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM models WHERE owner = ? AND id = ?", (owner, int(model_id))).fetchone()
        return self._record(row) if row else None

    def by_run(self, owner: str, run_id: str) -> ModelRecord | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM models WHERE owner = ? AND run_id = ?", (owner, run_id)).fetchone()
        return self._record(row) if row else None

    def add_tag(self, owner: str, run_id: str, tag: str) -> ModelRecord | None:
        """Tag the model a run registered (idempotent); None if that run registered no model."""
        with self._db() as db, write(db):  # not between a retention's check and its delete
            row = db.execute("SELECT * FROM models WHERE owner = ? AND run_id = ?", (owner, run_id)).fetchone()
            if row is None:
                return None
            tags = json.loads(row["tags"])
            if tag not in tags:
                db.execute("UPDATE models SET tags = ? WHERE id = ?", (json.dumps([*tags, tag]), row["id"]))
        return self.by_run(owner, run_id)

    def delete(self, owner: str, model_id: int) -> int:
        """Remove the record and its files together; returns the bytes reclaimed (0 if there was none)."""
        record = self.get(owner, model_id)
        if record is None:
            return 0
        with self._db() as db:
            db.execute("DELETE FROM models WHERE owner = ? AND id = ?", (owner, record.id))
        return self._remove_files(record)

    def _remove_files(self, record: ModelRecord) -> int:
        folder = self.model_dir(record)
        reclaimed = _size(folder)
        shutil.rmtree(folder, ignore_errors=True)
        return reclaimed

    # --- retention ------------------------------------------------------------------------------
    def keep_last(self, owner: str) -> int | None:
        """The N the owner last confirmed (the form's default), None if never."""
        with self._db() as db:
            row = db.execute("SELECT keep_last FROM user_settings WHERE owner = ?", (owner,)).fetchone()
        return row["keep_last"] if row else None

    def retention_plan(self, owner: str, keep_last: int) -> RetentionPlan:
        """What keeping the last `keep_last` versions of each lineage would delete; deletes nothing."""
        return plan_retention(self.list(owner), keep_last)

    def apply_retention(self, owner: str, keep_last: int, confirmed: frozenset[int] | set[int]) -> RetentionResult:
        """Delete exactly the versions the user confirmed from a preview of `keep_last`. Each must still be
        one the rule deletes (not tagged since, not a lineage's last, not gone); otherwise nothing is
        deleted and RetentionError says why. Checked and deleted in one transaction, so a tag or a new
        version cannot slip in between."""
        check_keep(keep_last)
        confirmed = frozenset(int(i) for i in confirmed)
        with self._db() as db, write(db):
            plan = plan_retention(self._list(db, check_username(owner)), keep_last)
            stale = confirmed - plan.ids
            if stale:
                raise RetentionError(
                    f"{len(stale)} of the versions in the preview may no longer be deleted (tagged, deleted, or "
                    "now the last of their dataset). Nothing was deleted; preview again."
                )
            doomed = tuple(r for r in plan.delete if r.id in confirmed)
            db.executemany("DELETE FROM models WHERE owner = ? AND id = ?", [(owner, r.id) for r in doomed])
            db.execute(
                "INSERT INTO user_settings (owner, keep_last) VALUES (?, ?) "
                "ON CONFLICT(owner) DO UPDATE SET keep_last = excluded.keep_last",
                (owner, keep_last),
            )
        return RetentionResult(doomed, sum(self._remove_files(r) for r in doomed))


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a registry from before per-lineage versions up to date, in place: every model keeps its id,
    version number and files; its dataset and target are read from its card. Rebuilt as a new table
    (SQLite cannot change a UNIQUE constraint), in one transaction that every process may race for."""
    if "folder" in _columns(db, "models"):
        return
    with write(db):
        if "folder" in _columns(db, "models"):
            return  # another process migrated it first
        db.execute("DROP TABLE IF EXISTS models_migrating")
        db.execute(MODELS_TABLE.format(table="models_migrating"))
        for row in db.execute("SELECT * FROM models ORDER BY id").fetchall():
            card = json.loads(row["card"])
            db.execute(
                "INSERT INTO models_migrating (id, owner, name, dataset_id, target, version, run_id, created_at,"
                " size_bytes, tags, card, folder) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row["id"],
                    row["owner"],
                    row["name"],
                    str((card.get("dataset") or {}).get("id") or ""),
                    str(card.get("target") or ""),
                    row["version"],
                    row["run_id"],
                    row["created_at"],
                    row["size_bytes"],
                    row["tags"],
                    row["card"],
                    f"models/{row['name']}/v{row['version']}",
                ),
            )
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'models'").fetchone()
        db.execute("DROP TABLE models")
        db.execute("ALTER TABLE models_migrating RENAME TO models")
        if seq is not None:  # ids of deleted models are never handed out again
            db.execute("DELETE FROM sqlite_sequence WHERE name = 'models_migrating'")
            db.execute("DELETE FROM sqlite_sequence WHERE name = 'models'")
            top = db.execute("SELECT COALESCE(MAX(id), 0) FROM models").fetchone()[0]
            db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('models', ?)", (max(seq[0], top),))


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
