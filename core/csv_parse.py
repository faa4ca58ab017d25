"""Reading an upload's CSV text as every upload is read: size and encoding checks, delimiter sniffing, the
header rules and the pandas parse (the reference behaviour; core.csv_stream is the fast path for large files)."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


DELIMITERS = (",", ";", "\t", "|")  # in order of preference when two read equally well
SNIFF_CHARS = 8 * 1024  # the prefix delimiter detection reads, whatever the file's size
SNIFF_LINES = 50


def sniff_delimiter(text: str) -> str:
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
    a space or tab: there it gives the same frame, cheaper."""
    import pandas as pd

    try:
        # index_col=False: a trailing delimiter on every row must not turn the first column into the index
        return pd.read_csv(
            source,
            sep=delimiter,
            skipinitialspace=skip_spaces,
            low_memory=False,
            index_col=False,
            nrows=nrows,
            encoding="utf-8-sig" if isinstance(source, Path) else None,  # text is decoded already
        )
    except pd.errors.ParserError as exc:
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise DatasetError(f"The CSV could not be parsed: {detail}. Check quoting and the number of fields per line.") from None
    except (pd.errors.EmptyDataError, UnicodeError, ValueError) as exc:
        raise DatasetError(f"The CSV could not be parsed: {exc}.") from None


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
