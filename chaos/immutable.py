"""Folders made unwritable even for root: `chattr +i` (root ignores `chmod`), always undone on the way out."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NEEDS = "needs root and chattr"


def _chattr(flag: str, paths: list[Path]) -> None:
    if paths:
        subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


def chattr_works(under: Path) -> bool:
    """Root, a chattr binary, and a file system under `under` that honours the immutable flag."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        return False
    with tempfile.TemporaryDirectory(dir=under) as tmp:
        folder = Path(tmp)
        try:
            _chattr("+i", [folder])
        except (subprocess.CalledProcessError, OSError):
            return False
        try:
            (folder / "probe").write_bytes(b"")
            return False  # the flag did not stop a write
        except PermissionError:
            return True
        finally:
            _chattr("-i", [folder])


@contextmanager
def immutable(*folders: Path) -> Iterator[None]:
    """No file can be created, renamed or removed in these folders while inside; the flag is removed after,
    whatever happens (a flag left behind would make the temp home impossible to delete)."""
    done: list[Path] = []
    try:
        for folder in folders:
            _chattr("+i", [folder])
            done.append(folder)
        yield
    finally:
        _chattr("-i", done)
