"""An upload read from disk without holding it in memory: a bounded head for the checks, one pass for the
hash and the facts that decide how to parse, then pyarrow's multithreaded CSV reader, typed as pandas types.

The result is the frame `csv_parse.parse_csv` would return. Files where pyarrow could read something
differently (spaces after delimiters, which pandas skips; lone CR line endings; hex-looking cells; NaN
spellings that are not missing values; integers written with a "+" or beyond 64 bits; ragged rows, blank
column names, a cell limit in reach) take the pandas parse instead, so the rules and messages stay one.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.csv_parse import (
    BINARY_PROBE,
    DatasetError,
    check_frame,
    check_header,
    check_not_binary,
    check_size,
    decode_csv_text,
    normalise_newlines,
    parse_csv,
    read_header,
    sniff_delimiter,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

CHUNK = 8 << 20  # bytes hashed and scanned at a time
NA_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>"]
NA_VALUES += ["N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]  # pandas' default missing values
TRUE_VALUES, FALSE_VALUES = ["True", "TRUE", "true"], ["False", "FALSE", "false"]  # pandas' booleans


@dataclass
class Scan:
    """What one pass over the bytes found: the hash, and what decides between pyarrow and pandas."""

    sha256: str
    lf: int = 0  # line feeds
    cr: int = 0
    crlf: int = 0
    quoted: bool = False
    risky: bool = False  # a space or tab opening a field, or "0x"
    ends_with_lf: bool = False


class CsvUpload:
    """An uploaded CSV, as bytes or a file on disk. Construction runs the cheap checks and hashes it."""

    def __init__(self, source: bytes | Path, max_bytes: int) -> None:
        self.source = source
        self.size = len(source) if isinstance(source, bytes) else source.stat().st_size
        check_size(self.size, max_bytes)
        self.max_bytes = max_bytes
        self.head = source[:BINARY_PROBE] if isinstance(source, bytes) else _read_head(source)
        self.whole = len(self.head) == self.size
        self.text = self._head_text()  # None: only the whole file can say (the pandas path does)
        self.delimiter = sniff_delimiter(normalise_newlines(self.text)) if self.text is not None else ","
        self.scan = self._scan()

    @property
    def sha256(self) -> str:
        return self.scan.sha256

    def _head_text(self) -> str | None:
        if not self.head.strip():
            if self.whole:
                raise DatasetError("The file is empty.")
            return None
        check_not_binary(self.head)
        try:
            text: str = codecs.getincrementaldecoder("utf-8-sig")().decode(self.head, final=self.whole)
            return text
        except UnicodeDecodeError:
            decode_csv_text(self._all_bytes(), self.max_bytes)  # raises the message naming the byte and line
            return None

    def _all_bytes(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else self.source.read_bytes()

    def _chunks(self) -> list[bytes] | _FileChunks:
        if isinstance(self.source, bytes):
            return [self.source]
        return _FileChunks(self.source)

    def _scan(self) -> Scan:
        digest = hashlib.sha256()
        d = self.delimiter.encode()
        # each pair only searched for when its rarer byte is there at all (a byte search is several times faster)
        pairs = [(b" ", d + b" "), (b" ", b"\n "), (b"\t", b"\n\t"), (b"x", b"0x"), (b"X", b"0X")]
        pairs += [(b"\t", d + b"\t")] if d != b"\t" else []
        scan = Scan("")
        last = b"\n"  # the file's start reads as the start of a line
        for chunk in self._chunks():
            digest.update(chunk)
            window = last + chunk
            scan.lf += chunk.count(b"\n")
            scan.cr += chunk.count(b"\r")
            scan.crlf += window.count(b"\r\n")
            scan.quoted = scan.quoted or b'"' in chunk
            scan.risky = scan.risky or any(byte in chunk and pair in window for byte, pair in pairs)
            last = chunk[-1:]
        scan.ends_with_lf = last == b"\n" and self.size > 0
        if self.head.startswith(codecs.BOM_UTF8 + b" ") or self.head.startswith(codecs.BOM_UTF8 + b"\t"):
            scan.risky = True
        scan.sha256 = digest.hexdigest()
        return scan

    def frame(self, min_columns: int = 2, max_columns: int | None = None, max_cells: int | None = None) -> pd.DataFrame:
        """The parsed, checked frame: pyarrow's read when it gives pandas' answer, else pandas' own parse."""
        df = self._arrow_frame(min_columns, max_columns, max_cells)
        if df is not None:
            return df
        text = decode_csv_text(self._all_bytes(), self.max_bytes)
        return parse_csv(text, min_columns=min_columns, max_columns=max_columns, max_cells=max_cells)

    def _arrow_frame(self, min_columns: int, max_columns: int | None, max_cells: int | None) -> pd.DataFrame | None:
        scan = self.scan
        if self.text is None or scan.risky or scan.cr != scan.crlf:
            return None
        header, spans = read_header(self.text, self.delimiter)
        check_header(header, max_columns)
        if not self.whole and spans > self.text.count("\n"):
            return None  # the header runs past the head: let the pandas parse read it
        if any(not h.strip() for h in header):
            return None  # pandas names a blank column "Unnamed: <i>"
        columns = max(len(header), 1)
        lines = scan.lf + (not scan.ends_with_lf) - 1
        if max_cells and lines * columns > max_cells:
            return None  # the pandas parse stops one row past the limit
        table = _read(self.source, self.delimiter, scan.quoted)
        table = None if table is None else _as_pandas_types(self.source, self.delimiter, scan.quoted, table)
        if table is None:
            return None
        import pyarrow as pa

        gappy = [f.name for f, c in zip(table.schema, table.columns) if pa.types.is_boolean(f.type) and c.null_count]
        df = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
        for name in gappy:  # pandas: an object column of True, False and NaN (pyarrow gives None)
            df[name] = df[name].where(df[name].notna(), float("nan"))
        return check_frame(df, columns, lines, min_columns, max_cells)


class _FileChunks:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(BINARY_PROBE)


def _read(source: bytes | Path, delimiter: str, quoted: bool, strings: list[str] | None = None) -> pa.Table | None:
    """pyarrow's parse with pandas' missing and boolean values; `strings`: read only these, as text. None: a row
    pyarrow refuses (ragged, bad quoting), left to the pandas parse for its message."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    convert = pacsv.ConvertOptions(
        null_values=NA_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        true_values=TRUE_VALUES,
        false_values=FALSE_VALUES,
        include_columns=strings,
        column_types=dict.fromkeys(strings, pa.string()) if strings else None,
    )
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=quoted)
    try:
        return pacsv.read_csv(
            pa.py_buffer(source) if isinstance(source, bytes) else str(source),
            parse_options=parse,
            convert_options=convert,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _as_pandas_types(source: bytes | Path, delimiter: str, quoted: bool, table: pa.Table) -> pa.Table | None:
    """The table with the types pandas' parser infers: dates and times stay text, an empty column is float,
    and a float column of whole numbers is checked against its text. None: only the pandas parse can tell."""
    import pyarrow as pa
    import pyarrow.compute as pc

    as_text, whole_floats = [], []
    for i, f in enumerate(table.schema):
        t = f.type
        if pa.types.is_binary(t):  # not UTF-8
            return None
        if pa.types.is_temporal(t):
            as_text.append(f.name)
        elif pa.types.is_null(t):
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
        elif pa.types.is_floating(t):
            col = table.column(i)
            if pc.any(pc.is_nan(col)).as_py():
                return None  # a NaN spelling pandas reads as text ("NAN")
            if col.null_count == 0 and pc.all(pc.equal(pc.floor(col), col)).as_py():
                whole_floats.append(f.name)
    if not as_text and not whole_floats:
        return table
    text = _read(source, delimiter, quoted, as_text + whole_floats)
    if text is None:
        return None
    for name in whole_floats:  # "1.0" or "1e3" is a float to pandas too; "+5" or 2**64 are not
        if not pc.any(pc.match_substring_regex(text.column(name), "[.eEiI]")).as_py():
            return None
    for name in as_text:
        table = table.set_column(table.schema.get_field_index(name), name, text.column(name))
    return table
