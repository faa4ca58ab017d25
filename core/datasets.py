"""Turning an uploaded CSV into a stored, profiled Parquet dataset, with messages a user can act on."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.csv_parse import DatasetError, decode_csv_text, parse_csv  # DatasetError: callers catch it from here
from core.csv_stream import CsvUpload
from core.names import check_dataset_id, display_name
from core.storage import Storage, write_atomic, write_atomic_with

if TYPE_CHECKING:
    import pandas as pd

PREVIEW_ROWS = 10


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
    sample = series.dropna().astype(str).head(200)
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


def profile(df: pd.DataFrame) -> tuple[list[ColumnProfile], list[dict[str, Any]]]:
    cols = [
        ColumnProfile(
            name=str(c),
            dtype=str(df[c].dtype),
            kind=_kind(df[c]),
            missing=int(df[c].isna().sum()),
            unique=int(df[c].nunique(dropna=True)),
        )
        for c in df.columns
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
    if isinstance(data, bytes):
        text = decode_csv_text(data, max_bytes)
        digest = hashlib.sha256(data).hexdigest()
        existing = load_info(storage, owner, digest[:16])
        if existing is not None:
            return existing
        df, size = parse_csv(text, max_columns=max_columns, max_cells=max_cells), len(data)
    else:
        upload = CsvUpload(data, max_bytes)  # hashes the file while it is parsed
        try:
            df = upload.frame(max_columns=max_columns, max_cells=max_cells)
        except DatasetError:
            existing = load_info(storage, owner, upload.sha256[:16])
            if existing is None:
                raise
            return existing
        digest, size = upload.sha256, upload.size
        existing = load_info(storage, owner, digest[:16])
        if existing is not None:
            return existing
    dataset_id = digest[:16]
    target = storage.dataset_dir(owner, dataset_id)
    with ThreadPoolExecutor(1) as pool:  # the Parquet is written (GIL released) while the profile is computed
        written = pool.submit(write_atomic_with, target / "data.parquet", lambda fh: df.to_parquet(fh, index=False))
        columns, preview = profile(df)
        try:  # written straight to its file: no copy of the Parquet in memory
            written.result()
        except (ValueError, OverflowError, TypeError) as exc:  # e.g. an integer beyond 64 bits
            raise DatasetError(f"The data could not be stored: {exc}. Check the column types.") from None
    info = DatasetInfo(
        dataset_id=dataset_id,
        name=display_name(filename),
        sha256=digest,
        size_bytes=size,
        rows=int(len(df)),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        columns=columns,
        preview=preview,
    )
    # meta.json last: its presence marks a complete dataset
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
