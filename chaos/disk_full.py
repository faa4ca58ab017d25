"""A full disk under one folder, for real: a tiny tmpfs mounted over it and filled to the last byte (needs root
and mount), always unmounted on the way out. The storage scenario and core/storage.py's unit tests use it."""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SIZE = "64k"
FILLER = ".filler"  # the file that takes every free byte; the only thing a test expects to find there
NEEDS_MOUNT = "needs root and permission to mount a tmpfs"


def _mount(folder: Path) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(folder)], check=True, capture_output=True
    )


def _umount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], check=True, capture_output=True)


def mount_works(under: Path) -> bool:
    """Root, and a tmpfs can be mounted here (a container without CAP_SYS_ADMIN cannot)."""
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory(dir=under) as tmp:
        try:
            _mount(Path(tmp))
        except (subprocess.CalledProcessError, OSError):
            return False
        _umount(Path(tmp))
    return True


def _fill(folder: Path) -> None:
    """Write zeros until the file system says it is full."""
    chunk = b"\0" * 4096
    with open(folder / FILLER, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(chunk)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                break
    for small in (512, 64, 1):  # the last partial block too
        try:
            with open(folder / FILLER, "ab", buffering=0) as fh:
                while True:
                    fh.write(b"\0" * small)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise


@contextmanager
def full_disk(folder: Path) -> Iterator[Path]:
    """`folder` (created if missing) is a full file system while inside: every write in it fails with ENOSPC.
    What was in it is hidden meanwhile and back after."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount(folder)
    try:
        _fill(folder)
        yield folder
    finally:
        _umount(folder)


def contents(folder: Path) -> set[str]:
    """Everything under `folder` but the filler, as relative paths."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != FILLER}
