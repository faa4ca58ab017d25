"""The registry's tables in the app database, and the in-place migration of a registry from before per-lineage versions."""

from __future__ import annotations

import json
import sqlite3

from core.db import write

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
-- the highest version each lineage ever had: a deleted version's number is never handed out again
CREATE TABLE IF NOT EXISTS lineage_versions (
    owner       TEXT NOT NULL,
    dataset_id  TEXT NOT NULL,
    target      TEXT NOT NULL,
    name        TEXT NOT NULL,
    last        INTEGER NOT NULL,
    PRIMARY KEY (owner, dataset_id, target, name)
);
-- the names of deleted datasets, so runs and models on them still say what they were trained on
CREATE TABLE IF NOT EXISTS deleted_datasets (
    owner       TEXT NOT NULL,
    dataset_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    deleted_at  TEXT NOT NULL,
    PRIMARY KEY (owner, dataset_id)
);
"""
)
INDEXES = """
CREATE INDEX IF NOT EXISTS models_owner ON models (owner, name);
CREATE INDEX IF NOT EXISTS models_lineage ON models (owner, dataset_id, target, name, version);
"""


def migrate(db: sqlite3.Connection) -> None:
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
