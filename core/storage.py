"""The storage root layout. Every path is built here from validated ids, never from raw user input."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.names import check_dataset_id, check_username, parse_run_id


@dataclass(frozen=True)
class Storage:
    root: Path

    # app state
    @property
    def auth_dir(self) -> Path:
        return self.root / "auth"

    @property
    def app_db(self) -> Path:
        return self.root / "app.db"

    @property
    def temporal_db(self) -> Path:
        return self.root / "temporal" / "temporal.db"

    @property
    def demo_accounts_file(self) -> Path:
        return self.root / "demo-accounts.txt"

    @property
    def supervisor_state(self) -> Path:
        """What the launcher last knew about its child processes (written by supervisor.py)."""
        return self.root / "state" / "supervisor.json"

    @property
    def workers_state(self) -> Path:
        """One beat file per live worker process, <identity>.json (orchestration/liveness.py)."""
        return self.root / "state" / "workers"

    # per user
    def user_dir(self, owner: str) -> Path:
        return self.root / "users" / check_username(owner)

    def upload_dir(self, owner: str) -> Path:
        return self.user_dir(owner) / "uploads"

    def datasets_dir(self, owner: str) -> Path:
        return self.user_dir(owner) / "datasets"

    def dataset_dir(self, owner: str, dataset_id: str) -> Path:
        return self.datasets_dir(owner) / check_dataset_id(dataset_id)

    def run_dir(self, owner: str, run_id: str) -> Path:
        _, run_owner = parse_run_id(run_id)
        if run_owner != owner:
            raise PermissionError("run belongs to another user")
        return self.user_dir(owner) / "runs" / run_id


PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_umask() -> int:
    """Files and folders this process creates from now on (SQLite, Parquet, Temporal's own files
    included) are readable by this account only. Call it first thing in every process that writes
    under the storage root; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def make_private_dirs(path: Path) -> list[Path]:
    """mkdir -p where every folder created is 0700 whatever the umask (existing folders are left as they are).
    Returns the folders it created, outermost first."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another writer made it first
            continue
        os.chmod(folder, DIR_MODE)
        created.append(folder)
    return created


def _open_private(path: Path, binary: bool = True) -> IO[Any]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # O_CREAT's mode is masked by the umask, and an old leftover keeps its mode
    return os.fdopen(fd, "wb" if binary else "w")


@contextmanager
def _removed_on_failure(tmp: Path, created: list[Path]) -> Iterator[None]:
    """What a failed write (disk full, I/O error, interrupted) leaves behind is deleted: the temporary file, and
    the folders made for it while still empty."""
    try:
        yield
    except BaseException:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        for folder in reversed(created):
            try:
                folder.rmdir()  # only if empty: another writer may have put something there meanwhile
            except OSError:
                break
        raise


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only (mode 0600), atomically."""
    created = make_private_dirs(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    with _removed_on_failure(tmp, created):
        with _open_private(tmp, binary=False) as fh:
            fh.write(text)
        os.replace(tmp, path)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file atomically, mode 0600 in 0700 folders whatever the umask; nothing is left on failure."""
    write_atomic_with(path, lambda fh: fh.write(data))


def write_atomic_with(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """`write_atomic` for a writer that streams into the open file (a model file's zip, member by member): the
    whole content is never held in memory, nor copied there."""

    def fill(tmp: Path) -> None:
        with _open_private(tmp) as fh:
            write(fh)

    _replace_atomically(path, fill)


def write_atomic_at(path: Path, write: Callable[[Path], object]) -> None:
    """`write_atomic` for a writer that opens the file by its path (pyarrow's Parquet writer, in native code: through
    a Python file object each write waits for the GIL). The file is made private and empty before the writer opens
    it, which keeps its mode."""

    def fill(tmp: Path) -> None:
        _open_private(tmp).close()
        write(tmp)

    _replace_atomically(path, fill)


def _replace_atomically(path: Path, fill: Callable[[Path], object]) -> None:
    """`fill` writes a temporary file beside `path` (its folders made private), which then replaces `path`."""
    created = make_private_dirs(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # unique per writer thread
    with _removed_on_failure(tmp, created):
        fill(tmp)
        os.replace(tmp, path)


def copy_private(source: Path, target: Path) -> None:
    """Copy a file to a new 0600 file, atomically (a model file into the registry); nothing is left on failure."""

    def fill(tmp: Path) -> None:
        with open(source, "rb") as src, _open_private(tmp) as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)

    _replace_atomically(target, fill)


def link_private(source: Path, target: Path) -> None:
    """`copy_private` for a private (0600) source that is never written in place again, only replaced or deleted
    (a run's model file, handed to the registry): a hard link, no copy of its bytes (a 100-tree forest's 20 MB:
    up to 60 ms). A copy where a link cannot be made (another file system, a link limit) or the source's mode is
    not 0600 (a link would share it)."""
    try:
        if source.stat().st_mode & 0o7777 == FILE_MODE:
            _replace_atomically(target, lambda tmp: os.link(source, tmp))
            return
    except OSError as exc:  # EXDEV, EMLINK, EPERM...: a copy does; a missing source fails there as it did
        if exc.errno == errno.ENOSPC:
            raise
    copy_private(source, target)


TMP_MAX_AGE_SECONDS = 3600.0  # a .tmp file older than this is a leftover of a killed writer, not a write under way


def sweep_tmp_files(storage: Storage, max_age: float = TMP_MAX_AGE_SECONDS, now: float | None = None) -> list[Path]:
    """Delete `*.tmp` leftovers older than `max_age` in every user's uploads, models and datasets folders (a
    writer killed between its write and its rename leaves one). Returns what was deleted."""
    now = time.time() if now is None else now
    removed = []
    for pattern in ("*/uploads/**/*.tmp", "*/models/**/*.tmp", "*/datasets/**/*.tmp"):
        for path in (storage.root / "users").glob(pattern):
            try:
                if path.is_file() and now - path.stat().st_mtime > max_age:
                    path.unlink()
                    removed.append(path)
            except OSError:  # gone meanwhile, or not ours to delete: the next sweep tries again
                continue
    return removed
