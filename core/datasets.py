"""Turning an uploaded CSV into a stored, profiled Parquet dataset, with messages a user can act on."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.csv_parse import DatasetError, decode_csv_text, parse_csv  # DatasetError: callers catch it from here
from core.csv_stream import CsvUpload
from core.names import check_dataset_id, display_name
from core.staged_parquet import StagedParquet
from core.storage import Storage, write_atomic

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

PREVIEW_ROWS = 10
SPARE_CORE = 1.5  # cores a parse used on average, above which another one is deemed free


@dataclass
class ColumnProfile:
    name: str
    dtype: str
    kind: str  # numeric | categorical | boolean | date
    missing: int
    unique: int


@dataclass
class DatasetInfo:
    dataset_id: str
    name: str
    sha256: str
    size_bytes: int
    rows: int
    created_at: str
    columns: list[ColumnProfile] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetInfo:
        cols = [ColumnProfile(**c) for c in d.get("columns", [])]
        return cls(**{**d, "columns": cols})


def looks_like_dates(series: pd.Series) -> bool:
    """A column of dates: datetimes, or text that parses as dates in (almost) every row. Training turns such a
    column into year, month, day and weekday features (ml.training.date_columns asks here too)."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    sample = series.dropna().head(200).astype(str)  # the sample only: astype of a million objects is slow
    if not len(sample) or sample.str.contains(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", regex=True).mean() < 0.9:
        return False
    return bool(pd.to_datetime(sample, errors="coerce", format="mixed", utc=True).notna().mean() >= 0.9)


def _kind(series: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if looks_like_dates(series):
        return "date"
    return "categorical"


def distinct_count(column: pa.ChunkedArray) -> int:
    """`Series.nunique()` of the column's frame, counted on its Arrow column (pyarrow's hash kernel, which
    releases the GIL: a third of pandas' time). Missing values are nulls there (one null among the values,
    not counted); -0.0 and 0.0, two values to the hash, are one to pandas."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.unique(column)  # faster than pc.count_distinct
    count = len(values) - (values.null_count > 0)
    if pa.types.is_floating(values.type) and np.count_nonzero(values.to_numpy(zero_copy_only=False) == 0) > 1:
        count -= 1
    return count


def profile(df: pd.DataFrame, table: pa.Table | None = None) -> tuple[list[ColumnProfile], list[dict[str, Any]]]:
    """The columns' profile and the preview rows. `table`: the frame's Arrow table (staged_parquet.arrow_table),
    whose columns know their missing values (nulls there) and count their distinct values faster; without it
    pandas counts both."""
    cols = [
        ColumnProfile(
            name=str(c),
            dtype=str(df[c].dtype),
            kind=_kind(df[c]),
            missing=int(df[c].isna().sum()) if table is None else table.column(i).null_count,
            unique=int(df[c].nunique(dropna=True)) if table is None else distinct_count(table.column(i)),
        )
        for i, c in enumerate(df.columns)
    ]
    head = df.head(PREVIEW_ROWS).astype(object)
    preview = json.loads(head.where(head.notna(), None).to_json(orient="records", date_format="iso"))
    return cols, preview


def ingest_csv(
    storage: Storage,
    owner: str,
    data: bytes | Path,
    filename: str,
    max_bytes: int,
    max_columns: int | None = None,
    max_cells: int | None = None,
) -> DatasetInfo:
    """Validate, convert and profile an upload (its bytes, or better the file it was staged to: then it is
    parsed from disk); store nothing unless every check passes. A file uploaded before is not stored again."""
    if not isinstance(data, bytes):
        return _ingest_file(storage, owner, CsvUpload(data, max_bytes), filename, max_columns, max_cells)
    text = decode_csv_text(data, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    existing = load_info(storage, owner, digest[:16])
    if existing is not None:
        return existing
    df = parse_csv(text, max_columns=max_columns, max_cells=max_cells)
    with StagedParquet(storage, owner, df) as staged:
        return _store(storage, owner, staged, df, digest, len(data), filename)


def _ingest_file(
    storage: Storage, owner: str, upload: CsvUpload, filename: str, max_columns: int | None, max_cells: int | None
) -> DatasetInfo:
    """The draft parse's Parquet is written while this thread reads the file through (its hash, the checks of
    the whole file: csv_stream) and profiles the frame; what the file turns out to say otherwise is redone.
    That only when the parse, on pandas' threads, found a second core free: on one core the two take turns, each
    evicting the other's hash tables from the core's cache, and that measured slower than one after the other."""
    wall, cpu = time.perf_counter(), time.process_time()
    draft = upload.draft(max_columns=max_columns, max_cells=max_cells)
    spare_core = time.process_time() - cpu > SPARE_CORE * (time.perf_counter() - wall)
    drafted = draft.frame if spare_core else None
    with ExitStack() as cleanup:
        early = StagedParquet.of_draft(storage, owner, drafted)
        if early is not None:
            cleanup.enter_context(early)
        try:
            df = upload.confirm(draft, max_columns=max_columns, max_cells=max_cells)
        except DatasetError:
            existing = load_info(storage, owner, upload.sha256[:16])
            if existing is None:
                raise
            return existing
        existing = load_info(storage, owner, upload.sha256[:16])
        if existing is not None:
            return existing
        if early is not None and df is drafted:
            staged = early
        else:
            if early is not None:
                early.discard()  # before a second frame and its table take memory too
            staged = cleanup.enter_context(StagedParquet(storage, owner, df, background=spare_core))
        return _store(storage, owner, staged, df, upload.sha256, upload.size, filename)


def _store(
    storage: Storage, owner: str, staged: StagedParquet, df: pd.DataFrame, sha256: str, size: int, filename: str
) -> DatasetInfo:
    """Profile the frame (while its Parquet is written, if that goes on in the background), then keep the
    Parquet and write meta.json (last: its presence marks a complete dataset)."""
    columns, preview = profile(df, staged.table)
    target = storage.dataset_dir(owner, sha256[:16])
    staged.keep(target / "data.parquet")
    info = DatasetInfo(
        dataset_id=sha256[:16],
        name=display_name(filename),
        sha256=sha256,
        size_bytes=size,
        rows=int(len(df)),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        columns=columns,
        preview=preview,
    )
    write_atomic(target / "meta.json", json.dumps(asdict(info)).encode())
    return info


def load_info(storage: Storage, owner: str, dataset_id: str) -> DatasetInfo | None:
    try:
        meta = storage.dataset_dir(owner, check_dataset_id(dataset_id)) / "meta.json"
    except ValueError:
        return None
    if not meta.is_file():
        return None
    return DatasetInfo.from_dict(json.loads(meta.read_text()))


def list_datasets(storage: Storage, owner: str) -> list[DatasetInfo]:
    root = storage.datasets_dir(owner)
    infos = [load_info(storage, owner, p.name) for p in root.iterdir()] if root.is_dir() else []
    return sorted((i for i in infos if i is not None), key=lambda i: i.created_at, reverse=True)


def dataset_path(storage: Storage, owner: str, dataset_id: str) -> Path:
    return storage.dataset_dir(owner, dataset_id) / "data.parquet"


# --- deleting: hide (one rename), check, then remove or put back --------------------------------------
def hide_dataset(storage: Storage, owner: str, dataset_id: str) -> Path:
    """Move a dataset out of sight in one rename: from now on listings, launches and data checks find no
    such dataset. Returns where it is (a name no dataset id matches), for `remove_hidden` or `restore_dataset`."""
    folder = storage.dataset_dir(owner, dataset_id)
    hidden = folder.with_name(f".deleting-{dataset_id}-{secrets.token_hex(4)}")
    os.rename(folder, hidden)
    return hidden


def restore_dataset(storage: Storage, owner: str, dataset_id: str, hidden: Path) -> None:
    """Undo `hide_dataset`. If the same file was uploaded again meanwhile, that copy stays and this one goes."""
    try:
        os.rename(hidden, storage.dataset_dir(owner, dataset_id))
    except OSError:
        shutil.rmtree(hidden, ignore_errors=True)


def remove_hidden(hidden: Path) -> int:
    """Delete a hidden dataset's files; returns the bytes freed."""
    freed = sum(p.stat().st_size for p in hidden.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(hidden, ignore_errors=True)
    return freed
