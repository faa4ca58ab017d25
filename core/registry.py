"""The model registry: versions per user and model name, in the app database (SQLite), files beside it.

A record and its files are created and deleted together; registering is idempotent per workflow run,
so a retried activity never makes a second version.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.db import open_db
from core.names import check_username
from core.storage import Storage, copy_private, write_atomic

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    run_id      TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    tags        TEXT NOT NULL DEFAULT '[]',
    card        TEXT NOT NULL,
    UNIQUE (owner, name, version)
);
CREATE INDEX IF NOT EXISTS models_owner ON models (owner, name);
CREATE TABLE IF NOT EXISTS user_settings (
    owner       TEXT PRIMARY KEY,
    keep_last   INTEGER          -- keep at most this many versions per model name; NULL keeps all
);
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

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


class Registry:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.path = storage.app_db
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with open_db(self.path) as db:
            yield db

    def model_dir(self, owner: str, name: str, version: int) -> Path:
        return self.storage.user_dir(owner) / "models" / name / f"v{version}"

    def model_file(self, record: ModelRecord) -> Path:
        return self.model_dir(record.owner, record.name, record.version) / "model.skops"

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
        )

    def register(
        self, owner: str, name: str, run_id: str, model_file: Path, card: dict[str, Any], tags: tuple[str, ...] = ()
    ) -> ModelRecord:
        check_username(owner)
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time: versions are numbered without gaps
            try:
                row = db.execute("SELECT * FROM models WHERE run_id = ?", (run_id,)).fetchone()
                if row is None:
                    version = db.execute(
                        "SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE owner = ? AND name = ?", (owner, name)
                    ).fetchone()[0]
                    target = self.model_dir(owner, name, version)
                    copy_private(model_file, target / "model.skops")  # 0600 in 0700 folders, whatever the umask
                    card = {**card, "name": name, "version": version}
                    write_atomic(target / "card.json", json.dumps(card, indent=2, default=str).encode())
                    db.execute(
                        "INSERT INTO models (owner, name, version, run_id, created_at, size_bytes, tags, card)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            owner,
                            name,
                            version,
                            run_id,
                            datetime.now(UTC).isoformat(timespec="seconds"),
                            _size(target),
                            json.dumps(list(tags)),
                            json.dumps(card, default=str),
                        ),
                    )
                    row = db.execute("SELECT * FROM models WHERE run_id = ?", (run_id,)).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        record = self._record(row)
        self.apply_retention(owner, record.name)
        return record

    def list(self, owner: str) -> list[ModelRecord]:
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM models WHERE owner = ? ORDER BY created_at DESC, id DESC", (check_username(owner),)
            ).fetchall()
        return [self._record(r) for r in rows]

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
        record = self.by_run(owner, run_id)
        if record is None:
            return None
        if tag not in record.tags:
            with self._db() as db:
                db.execute("UPDATE models SET tags = ? WHERE id = ?", (json.dumps([*record.tags, tag]), record.id))
        return self.by_run(owner, run_id)

    def delete(self, owner: str, model_id: int) -> int:
        """Remove the record and its files together; returns the bytes reclaimed (0 if there was none)."""
        record = self.get(owner, model_id)
        if record is None:
            return 0
        folder = self.model_dir(owner, record.name, record.version)
        reclaimed = _size(folder)
        with self._db() as db:
            db.execute("DELETE FROM models WHERE owner = ? AND id = ?", (owner, record.id))
        shutil.rmtree(folder, ignore_errors=True)
        return reclaimed

    def keep_last(self, owner: str) -> int | None:
        with self._db() as db:
            row = db.execute("SELECT keep_last FROM user_settings WHERE owner = ?", (owner,)).fetchone()
        return row["keep_last"] if row else None

    def set_keep_last(self, owner: str, keep: int | None) -> int:
        """Set the retention (None keeps everything) and apply it now; returns bytes reclaimed."""
        if keep is not None and not 1 <= keep <= 1000:
            raise ValueError("keep-last must be between 1 and 1000 versions")
        with self._db() as db:
            db.execute(
                "INSERT INTO user_settings (owner, keep_last) VALUES (?, ?) "
                "ON CONFLICT(owner) DO UPDATE SET keep_last = excluded.keep_last",
                (check_username(owner), keep),
            )
        names = {r.name for r in self.list(owner)}
        return sum(self.apply_retention(owner, name) for name in names)

    def apply_retention(self, owner: str, name: str) -> int:
        keep = self.keep_last(owner)
        if keep is None:
            return 0
        with self._db() as db:
            old = db.execute(
                "SELECT id FROM models WHERE owner = ? AND name = ? ORDER BY version DESC LIMIT -1 OFFSET ?", (owner, name, keep)
            ).fetchall()
        return sum(self.delete(owner, row["id"]) for row in old)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
