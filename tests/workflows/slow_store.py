"""A fit child's model store that stops in the middle (its temporary file written, not yet renamed) until the test
kills the child, for tests/workflows/test_scratch_files.py. A module of its own: the child imports it to unpickle
the store (ml.child_fit's Job.store)."""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path
from typing import IO, Any


def _store(marker: Path, path: Path, trusted: Path, pipeline: Any) -> None:
    from core.storage import write_atomic_with
    from ml.persist import store_model, write_model

    if (marker / "killed").exists():  # the retry stores as the real store does
        store_model(path, trusted, pipeline)
        return

    def write(fh: IO[bytes]) -> None:
        write_model(pipeline, fh)
        fh.flush()
        (marker / "storing").write_text(str(os.getpid()))
        time.sleep(120)  # killed here

    write_atomic_with(path, write)


def stalled_store(marker: Path, path: Path, trusted: Path) -> Any:
    return partial(_store, marker, path, trusted)
