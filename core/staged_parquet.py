"""A dataset's Parquet, written under a temporary name until it is kept (in a thread while the ingest goes on)."""

from __future__ import annotations

import os
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from core.csv_parse import DatasetError
from core.storage import Storage, make_private_dirs, write_atomic_at

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

WRITE_BUFFER = 1 << 20  # bytes handed to the file at a time


def _refused(exc: Exception) -> DatasetError:
    return DatasetError(f"The data could not be stored: {exc}. Check the column types.")


def arrow_table(df: pd.DataFrame) -> pa.Table:
    """The table `DataFrame.to_parquet(index=False)` writes (so the file, its types and its pandas metadata are
    the same), built once: the profile counts distinct values on it too."""
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. an integer beyond 64 bits
        raise _refused(exc) from None


def write_parquet(table: pa.Table, path: Path) -> None:
    """`to_parquet`'s file (its defaults: snappy, one row group per million rows) for `table`, written by pyarrow's
    own file (a Python file object makes each write wait for the GIL, which the thread profiling the frame holds:
    the write, the ingest's longest step, took up to half as long again). The file is opened by the path's bytes:
    pyarrow encodes a path given as text in UTF-8 (a folder named in Latin-1 could not be written), and its file
    systems read one that starts like a URI ("c2:...") as one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pa.OSFile(os.fsencode(path), "wb") as file, pa.BufferedOutputStream(file, WRITE_BUFFER) as sink:
        pq.write_table(table, sink)  # buffered: the writer's 2,000 small writes of 1M rows are 60 system calls


class StagedParquet:
    """The Parquet of a frame, written in a thread (pyarrow releases the GIL) into the owner's datasets folder
    under a temporary name (`*.tmp`: swept if a killed worker leaves it) while the caller reads the upload
    through and profiles the frame. `keep` moves it into its dataset's folder, once the upload's hash names
    that; leaving the `with` block without keeping it deletes it."""

    def __init__(self, storage: Storage, owner: str, df: pd.DataFrame, background: bool = True) -> None:
        """`background=False`: written here and now, for a caller that has no second core to write it on."""
        self.table: pa.Table | None = arrow_table(df)
        self.path = storage.datasets_dir(owner) / f".ingest-{secrets.token_hex(8)}.parquet.tmp"
        write = partial(write_atomic_at, self.path, partial(write_parquet, self.table))
        if background:
            pool = ThreadPoolExecutor(1)
            self._written = pool.submit(write)
            pool.shutdown(wait=False)
            return
        self._written = Future()
        try:
            self._written.set_result(write())
        except Exception as exc:  # noqa: BLE001 - raised by keep, as from the thread
            self._written.set_exception(exc)

    @classmethod
    def of_draft(cls, storage: Storage, owner: str, df: pd.DataFrame | None) -> StagedParquet | None:
        """A draft frame's Parquet, under way; None without a draft, or when it cannot be stored (the confirmed
        frame, if it is this one, is refused then, after the checks that come first)."""
        if df is None:
            return None
        try:
            return cls(storage, owner, df)
        except DatasetError:
            return None

    def __enter__(self) -> StagedParquet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def discard(self) -> None:
        """Wait for the write (its file is not deleted under it) and delete what it wrote. Idempotent."""
        self.table = None
        try:
            self._written.result()
        except Exception:  # noqa: BLE001 - a failed write leaves nothing (write_atomic_at), and nothing is kept
            pass
        self.path.unlink(missing_ok=True)

    def keep(self, target: Path) -> None:
        """Move the written file to `target` (its folder is made, private), or DatasetError if it could not be written."""
        try:
            self._written.result()
        except (ValueError, OverflowError, TypeError) as exc:
            raise _refused(exc) from None
        make_private_dirs(target.parent)
        os.replace(self.path, target)
