"""Reading an upload's CSV text as every upload is read: size and encoding checks, the delimiter (core.csv_sniff),
the header rules and the pandas parse (the reference behaviour; core.csv_stream is the fast path for large files)."""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.csv_sniff import sniff_delimiter

if TYPE_CHECKING:
    import pandas as pd

_BINARY_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx file?)",
    b"\x1f\x8b": "a gzip archive",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls file",
    b"%PDF": "a PDF document",
    b"PAR1": "a Parquet file",
}


class DatasetError(ValueError):
    """The upload cannot become a dataset; the message says what to change."""


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise DatasetError(f"The file is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")


def check_not_binary(head: bytes) -> None:
    """`head`: the file's first MB (or all of it when smaller)."""
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise DatasetError(f"This is {what}, not a CSV file. Export it as CSV (UTF-8) and upload that.")
    if b"\x00" in head[:BINARY_PROBE]:
        raise DatasetError("This looks like a binary file, not a CSV text file.")


BINARY_PROBE = 1 << 20  # the prefix searched for NUL bytes


def decode_csv_text(data: bytes, max_bytes: int) -> str:
    """Check size and encoding before any parsing: these are the cheap, common mistakes."""
    check_size(len(data), max_bytes)
    if not data.strip():
        raise DatasetError("The file is empty.")
    check_not_binary(data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}). "
            "Save it as 'CSV UTF-8' and upload it again."
        ) from None


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


def read_header(text: str, delimiter: str) -> tuple[list[str], int]:
    """The header's fields and how many lines it spans (quoted line breaks make it more than one)."""
    reader = csv.reader(_lines(text), delimiter=delimiter)
    try:
        header = next(reader, [])
    except csv.Error as exc:  # e.g. a header field beyond the csv module's size limit
        raise DatasetError(f"The header line could not be read: {exc}. Check the first line of the file.") from None
    return header, reader.line_num


def check_header(header: list[str], max_columns: int | None) -> None:
    """The column limit, read on the header before anything else is parsed, and unique names."""
    if max_columns and len(header) > max_columns:
        raise DatasetError(
            f"The file has {len(header):,} columns; the limit is {max_columns:,} columns. "
            "Keep the columns you need and upload it again."
        )
    names = [h.strip() for h in header]
    dupes = sorted(n for n, k in Counter(names).items() if n and k > 1)
    if dupes:
        raise DatasetError(f"Column names must be unique; repeated: {', '.join(map(repr, dupes[:5]))}.")


def data_lines(text: str) -> int:
    """Data lines of normalised text, at most (quoted line breaks count)."""
    return text.count("\n") + (not text.endswith("\n")) - 1


def check_frame(df: pd.DataFrame, columns: int, lines: int, min_columns: int, max_cells: int | None) -> pd.DataFrame:
    """The checks on the parsed frame: the cell limit, at least `min_columns` columns, some rows. Strips names."""
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


def read_frame(source: Any, delimiter: str, nrows: int | None = None, skip_spaces: bool = True) -> pd.DataFrame:
    """pandas' parse with the options every upload is read with (from text, or from a file path as UTF-8), or
    DatasetError with the parser's reason. `skip_spaces=False` is only for files where no field starts with
    a space or tab: there it gives the same frame, cheaper.

    A column's type is the one inferred from the whole column (`low_memory=False`). From a path, pandas is let
    read in pieces (`low_memory=True`): a large file then on several threads (pandas 3.1's parallel read, about
    twice as fast; it falls back to a serial read, in pieces too, where its pieces' types disagree). Where a
    column's pieces were typed apart (`typed_by_pieces`), the file is read again whole: a large file with text
    in a numeric column only here and there costs three reads, all others one."""
    pieces = isinstance(source, Path) and nrows is None  # nrows keeps pandas from reading in parallel
    df = _read_csv(source, delimiter, nrows, skip_spaces, low_memory=pieces)
    if pieces and typed_by_pieces(df):
        df = _read_csv(source, delimiter, nrows, skip_spaces, low_memory=False)
    return df


# pandas warns when the pieces of a column were typed apart; read_frame reads such a column again whole
warnings.filterwarnings("ignore", message=r"Columns \(.*\) have mixed types", module=r"core\.csv_parse")


def typed_by_pieces(df: pd.DataFrame) -> bool:
    """Whether a frame read in pieces (`low_memory=True`) may differ from the whole-column read: a column
    whose pieces were typed apart comes out as Python objects mixing numbers and text (a column of booleans
    with missing values is objects either way), or as floats when a piece of integers met one of integers
    past 2**63 (read whole: unsigned integers)."""
    import numpy as np
    import pandas as pd

    for _, column in df.items():
        if column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) != "boolean":
            return True
        if column.dtype == np.float64:
            values = column.to_numpy()
            # one comparison per value (the inf test only where one is that big): 24 -> 13 ms at 1M x 20
            big = values >= 2.0**63
            if big.any() and np.any(big & (values != np.inf)):
                return True
    return False


def _read_csv(source: Any, delimiter: str, nrows: int | None, skip_spaces: bool, low_memory: bool) -> pd.DataFrame:
    import pandas as pd

    try:
        # index_col=False: a trailing delimiter on every row must not turn the first column into the index
        return pd.read_csv(
            source,
            sep=delimiter,
            skipinitialspace=skip_spaces,
            low_memory=low_memory,
            index_col=False,
            nrows=nrows,
            encoding="utf-8-sig" if isinstance(source, Path) else None,  # text is decoded already
        )
    except pd.errors.ParserError as exc:
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        if detail.startswith("EOF inside string"):  # pandas' "row" counts records from 0: say the editor's line
            line = unclosed_quote_line(source, delimiter, skip_spaces)
            detail = f"a quoted value opened on line {line} is never closed" if line else "a quoted value is never closed"
        raise DatasetError(f"The CSV could not be parsed: {detail}. Check quoting and the number of fields per line.") from None
    except (pd.errors.EmptyDataError, UnicodeError, ValueError) as exc:
        raise DatasetError(f"The CSV could not be parsed: {exc}.") from None


def unclosed_quote_line(source: Any, delimiter: str, skip_spaces: bool) -> int | None:
    """The line (from 1, as an editor counts) on which the record that ends inside quotes starts; None if the file
    reads whole. Python's csv reader quotes as pandas does (a quote opens a value only at its start); it counts
    physical lines, where pandas counts records, which differ after a value spanning lines."""
    if isinstance(source, Path):
        handle: Any = source.open(encoding="utf-8-sig", newline="")
    else:
        source.seek(0)
        handle = source
    with handle:
        reader = csv.reader(handle, delimiter=delimiter, skipinitialspace=skip_spaces, strict=True)
        start = 1
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error:
            return start
    return None


def parse_csv(text: str, min_columns: int = 2, max_columns: int | None = None, max_cells: int | None = None) -> pd.DataFrame:
    """Parse CSV text into a DataFrame, or raise DatasetError naming the problem.

    `max_columns` is checked on the header line before anything else is parsed; `max_cells` (rows x
    columns) on a count of the lines, and the parse then stops one row past the limit.
    """
    text = normalise_newlines(text)  # before anything counts lines: a CR-only file is one "line" otherwise
    delimiter = sniff_delimiter(text)
    header, _ = read_header(text, delimiter)
    check_header(header, max_columns)
    nrows = None
    columns = max(len(header), 1)
    lines = data_lines(text)
    if max_cells and lines * columns > max_cells:
        nrows = max_cells // columns + 1  # enough to know whether the limit is really passed
    df = read_frame(io.StringIO(text), delimiter, nrows=nrows)
    return check_frame(df, columns, lines, min_columns, max_cells)
