"""Turning an uploaded CSV into a stored, profiled Parquet dataset, with messages a user can act on."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import secrets
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.names import check_dataset_id, display_name
from core.storage import Storage, write_atomic

if TYPE_CHECKING:
    import pandas as pd

PREVIEW_ROWS = 10
_BINARY_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx file?)",
    b"\x1f\x8b": "a gzip archive",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls file",
    b"%PDF": "a PDF document",
    b"PAR1": "a Parquet file",
}


class DatasetError(ValueError):
    """The upload cannot become a dataset; the message says what to change."""


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


def decode_csv_text(data: bytes, max_bytes: int) -> str:
    """Check size and encoding before any parsing: these are the cheap, common mistakes."""
    if len(data) > max_bytes:
        raise DatasetError(f"The file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    if not data.strip():
        raise DatasetError("The file is empty.")
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise DatasetError(f"This is {what}, not a CSV file. Export it as CSV (UTF-8) and upload that.")
    if b"\x00" in data[: 1 << 20]:
        raise DatasetError("This looks like a binary file, not a CSV text file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}). "
            "Save it as 'CSV UTF-8' and upload it again."
        ) from None


DELIMITERS = (",", ";", "\t", "|")  # in order of preference when two read equally well
SNIFF_CHARS = 8 * 1024  # the prefix delimiter detection reads, whatever the file's size
SNIFF_LINES = 50


def _sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV, read from a bounded prefix in linear time.

    Each candidate counts its occurrences outside quotes on every complete line of the prefix; the one
    that appears in the header and splits the data lines most consistently wins (ties: comma first).
    `csv.Sniffer` is not used: its regular expressions backtrack, and a crafted 64 KB line kept it busy
    for seconds.
    """
    sample = text[:SNIFF_CHARS]
    cut = len(text) > SNIFF_CHARS
    best, best_score = ",", None
    for delimiter in DELIMITERS:
        counts = _delimiter_counts(sample, delimiter, cut)
        if not counts or counts[0] == 0:
            continue
        rows = counts[1:] or counts
        usual = max(set(rows), key=rows.count)
        score = (sum(c == usual for c in rows) / len(rows), counts[0])
        if best_score is None or score > best_score:
            best, best_score = delimiter, score
    return best


def _delimiter_counts(sample: str, delimiter: str, cut: bool) -> list[int]:
    """Per non-blank line of `sample` (at most SNIFF_LINES), how often `delimiter` splits it, reading
    double quotes as CSV does: a quote opens a field only at its start, and `""` inside one is a quote.
    The last line is left out when the sample was cut from a longer text, unless it is the only one."""
    if '"' not in sample:
        lines = sample.split("\n")[: SNIFF_LINES + 1]
        if cut and len(lines) > 1:
            lines.pop()
        return [line.count(delimiter) for line in lines[:SNIFF_LINES] if line.strip()]
    counts: list[int] = []
    found, in_quotes, field_start, content = 0, False, True, False
    i, n = 0, len(sample)
    while i < n and len(counts) < SNIFF_LINES:
        ch = sample[i]
        i += 1
        if in_quotes:
            if ch == '"':
                if i < n and sample[i] == '"':
                    i += 1  # an escaped quote inside the field
                else:
                    in_quotes = False
            continue
        if ch == "\n":
            if content:
                counts.append(found)
            found, field_start, content = 0, True, False
        elif ch == delimiter:
            found, field_start, content = found + 1, True, True
        elif ch == '"' and field_start:
            in_quotes, field_start, content = True, False, True
        elif not ch.isspace():
            field_start, content = False, True
    if content and (not cut or not counts) and len(counts) < SNIFF_LINES:
        counts.append(found)  # the last line: complete, or the only (partial) one there is
    return counts


def _lines(text: str) -> Iterator[str]:
    """The lines of `text` one by one, without copying it (csv.reader pulls only what it needs)."""
    start, n = 0, len(text)
    while start < n:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


_NEWLINE = re.compile(r"\r\n?")


def normalise_newlines(text: str) -> str:
    """Old Mac files end lines with a lone CR: read them as LF lines. Plain LF and Windows CRLF files
    (which pandas reads as they are) are returned unchanged, without a copy."""
    if "\r" not in text:
        return text
    crlf = text.count("\r\n")
    if crlf == text.count("\r"):
        return text
    return _NEWLINE.sub("\n", text)


def parse_csv(text: str, min_columns: int = 2, max_columns: int | None = None, max_cells: int | None = None) -> pd.DataFrame:
    """Parse CSV text into a DataFrame, or raise DatasetError naming the problem.

    `max_columns` is checked on the header line before anything else is parsed; `max_cells` (rows x
    columns) on a count of the lines, and the parse then stops one row past the limit.
    """
    import pandas as pd

    text = normalise_newlines(text)  # before anything counts lines: a CR-only file is one "line" otherwise
    delimiter = _sniff_delimiter(text)
    try:
        header = next(csv.reader(_lines(text), delimiter=delimiter), [])
    except csv.Error as exc:  # e.g. a header field beyond the csv module's size limit
        raise DatasetError(f"The header line could not be read: {exc}. Check the first line of the file.") from None
    if max_columns and len(header) > max_columns:
        raise DatasetError(
            f"The file has {len(header):,} columns; the limit is {max_columns:,} columns. "
            "Keep the columns you need and upload it again."
        )
    names = [h.strip() for h in header]
    dupes = sorted(n for n, k in Counter(names).items() if n and k > 1)
    if dupes:
        raise DatasetError(f"Column names must be unique; repeated: {', '.join(map(repr, dupes[:5]))}.")
    nrows = None
    columns = max(len(header), 1)
    lines = text.count("\n") + (not text.endswith("\n")) - 1  # data lines, at most (quoted line breaks count)
    if max_cells and lines * columns > max_cells:
        nrows = max_cells // columns + 1  # enough to know whether the limit is really passed
    try:
        # index_col=False: a trailing delimiter on every row must not turn the first column into the index
        df = pd.read_csv(io.StringIO(text), sep=delimiter, skipinitialspace=True, low_memory=False, index_col=False, nrows=nrows)
    except pd.errors.ParserError as exc:
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise DatasetError(f"The CSV could not be parsed: {detail}. Check quoting and the number of fields per line.") from None
    except (pd.errors.EmptyDataError, UnicodeError, ValueError) as exc:
        raise DatasetError(f"The CSV could not be parsed: {exc}.") from None
    if max_cells and len(df) * columns > max_cells:
        raise DatasetError(
            f"The file has about {lines:,} rows x {columns:,} columns = {lines * columns:,} cells; "
            f"the limit is {max_cells:,} cells. Use fewer rows or columns."
        )
    df.columns = [str(c).strip() for c in df.columns]
    if len(df.columns) < min_columns:
        raise DatasetError(
            f"A dataset needs at least two columns (features and a target); this file has {len(df.columns)}. "
            "Is it comma-, semicolon- or tab-separated?"
        )
    if len(df) == 0:
        raise DatasetError("The file has a header but no data rows.")
    return df


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
    data: bytes,
    filename: str,
    max_bytes: int,
    max_columns: int | None = None,
    max_cells: int | None = None,
) -> DatasetInfo:
    """Validate, convert and profile an upload; store nothing unless every check passes."""
    text = decode_csv_text(data, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    dataset_id = digest[:16]
    existing = load_info(storage, owner, dataset_id)
    if existing is not None:
        return existing
    df = parse_csv(text, max_columns=max_columns, max_cells=max_cells)
    columns, preview = profile(df)
    info = DatasetInfo(
        dataset_id=dataset_id,
        name=display_name(filename),
        sha256=digest,
        size_bytes=len(data),
        rows=int(len(df)),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        columns=columns,
        preview=preview,
    )
    target = storage.dataset_dir(owner, dataset_id)
    buf = io.BytesIO()
    try:
        df.to_parquet(buf, index=False)
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. an integer beyond 64 bits
        raise DatasetError(f"The data could not be stored: {exc}. Check the column types.") from None
    write_atomic(target / "data.parquet", buf.getvalue())
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
