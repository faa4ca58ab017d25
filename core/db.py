"""The app database (SQLite under the storage root): registry, accounts, sessions, quotas, audit log.

Every module opens its own short-lived connection through `open_db`; WAL lets readers and one writer
work at once across the app, API and worker processes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from core.storage import FILE_MODE, make_private_dirs


@contextmanager
def open_db(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode; use `with write(db):` for a transaction that must not interleave."""
    if not path.exists():
        # created 0600 whatever the umask; SQLite gives its -wal and -shm files the same mode
        make_private_dirs(path.parent)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.row_factory = sqlite3.Row
        yield db


@contextmanager
def write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT: read-check-write sequences (quotas, the audit chain) stay atomic
    across processes."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
