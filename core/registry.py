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
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.db import open_db, write
from core.model_record import ModelRecord
from core.names import check_username, parse_run_id
from core.registry_schema import INDEXES, SCHEMA, migrate
from core.retention import RetentionError, RetentionPlan, check_keep, plan_retention
from core.storage import Storage, link_private, write_atomic

MODEL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a catalog key: it becomes a folder name


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
            migrate(db)
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
        with self._db() as db, write(db):  # one writer at a time: no two runs get the same number
            row = db.execute("SELECT * FROM models WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                version = _next_version(db, owner, dataset_id, target, name)
                folder = f"models/{name}/{run_id}"
                where = self.storage.user_dir(owner) / folder
                try:
                    link_private(model_file, where / "model.skops")  # 0600 in 0700 folders, whatever the umask
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
                except BaseException:
                    # No record will name these files (the transaction rolls back): they go, or they would stay
                    # unseen, unsweepable and counted in the owner's stored bytes (a full disk links the model,
                    # which takes no space, then fails on its card). Still under the write lock: no other
                    # register of this run can have put its files there meanwhile.
                    _remove_folder(where)
                    raise
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

    def remove_tag(self, owner: str, model_id: int, tag: str) -> ModelRecord | None:
        """Take a tag off a model (idempotent); None if there is no such model."""
        with self._db() as db, write(db):
            row = db.execute("SELECT * FROM models WHERE owner = ? AND id = ?", (owner, int(model_id))).fetchone()
            if row is None:
                return None
            tags = [t for t in json.loads(row["tags"]) if t != tag]
            db.execute("UPDATE models SET tags = ? WHERE id = ?", (json.dumps(tags), row["id"]))
        return self.get(owner, model_id)

    def remember_deleted_dataset(self, owner: str, dataset_id: str, name: str) -> None:
        """Keep a deleted dataset's name: its runs and models still name what they were trained on."""
        with self._db() as db, write(db):
            db.execute(
                "INSERT INTO deleted_datasets (owner, dataset_id, name, deleted_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(owner, dataset_id) DO UPDATE SET name = excluded.name, deleted_at = excluded.deleted_at",
                (check_username(owner), dataset_id, name, datetime.now(UTC).isoformat(timespec="seconds")),
            )

    def known_dataset_names(self, owner: str) -> dict[str, str]:
        """Dataset id -> name for every dataset the registry knows of: deleted ones, and those its models'
        cards name (which covers datasets deleted before their names were kept)."""
        with self._db() as db:
            names = {r.dataset_id: r.dataset_name for r in reversed(self._list(db, check_username(owner))) if r.dataset_id}
            rows = db.execute("SELECT dataset_id, name FROM deleted_datasets WHERE owner = ?", (owner,)).fetchall()
        return names | {r["dataset_id"]: r["name"] for r in rows}

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


def _next_version(db: sqlite3.Connection, owner: str, dataset_id: str, target: str, name: str) -> int:
    """One more than the lineage ever had, kept as its high-water mark: a version deleted (v7) is never
    reused by the next run (v8). A lineage from before the mark starts from its highest stored version."""
    lineage = (owner, dataset_id, target, name)
    stored = db.execute(
        "SELECT COALESCE(MAX(version), 0) FROM models WHERE owner = ? AND dataset_id = ? AND target = ? AND name = ?", lineage
    ).fetchone()[0]
    mark = db.execute(
        "SELECT last FROM lineage_versions WHERE owner = ? AND dataset_id = ? AND target = ? AND name = ?", lineage
    ).fetchone()
    version = max(stored, mark[0] if mark else 0) + 1
    db.execute(
        "INSERT INTO lineage_versions (owner, dataset_id, target, name, last) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(owner, dataset_id, target, name) DO UPDATE SET last = excluded.last",
        (*lineage, version),
    )
    return int(version)


def _remove_folder(folder: Path) -> None:
    """A model's folder and, left empty, its model name's folder (models/<name>) and models/."""
    shutil.rmtree(folder, ignore_errors=True)
    with suppress(OSError):  # not empty: another model's
        folder.parent.rmdir()
        folder.parent.parent.rmdir()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
