"""An upload staged on disk, parsed from its path by pandas' own parser with the options of every upload
(core.csv_parse.read_frame), so the frame, the rules and the messages are the text parse's.

The checks that need only the start of the file (size, binary, encoding, delimiter, header) read a bounded
head. One pass over the whole file runs in a thread during the parse (hashlib and pandas' tokenizer
release the GIL): it hashes the bytes and checks what the head cannot tell — UTF-8 throughout, how many
lines, whether a field anywhere starts with a space or tab (then the file is read again, skipping those
spaces as the text parse does; without any, skipping is a cost with no effect) and lone CR line endings
(old Mac files, read by the text parse, which normalises them).
"""

from __future__ import annotations

import codecs
import hashlib
from concurrent.futures import ThreadPoolExecutor
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
    read_frame,
    read_header,
    sniff_delimiter,
)

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 8 << 20  # bytes hashed and scanned at a time


@dataclass
class Scan:
    """What the pass over the whole file found."""

    sha256: str = ""
    utf8: bool = True
    lf: int = 0  # line feeds
    lone_cr: bool = False  # a CR not followed by LF
    spaced: bool = False  # a space or tab after a delimiter or a line break (perhaps inside quotes)
    ends_with_lf: bool = False


def scan_file(path: Path, delimiter: str) -> Scan:
    scan, digest = Scan(), hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    d = delimiter.encode()
    pairs = [d + b" ", d + b"\t", b"\n ", b"\n\t", b"\r ", b"\r\t"]
    last = b"\n"  # the file's start reads as the start of a line
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if scan.utf8 and not chunk.isascii():
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    scan.utf8 = False
            window = last + chunk
            scan.lf += chunk.count(b"\n")
            if b"\r" in chunk:
                scan.lone_cr = scan.lone_cr or window.count(b"\r") != (window + b"\n").count(b"\r\n")
            if not scan.spaced and (b" " in chunk or b"\t" in chunk):
                scan.spaced = any(pair in window for pair in pairs)
            last = chunk[-1:]
    scan.lone_cr = scan.lone_cr or last == b"\r"
    scan.ends_with_lf = last == b"\n"
    scan.sha256 = digest.hexdigest()
    return scan


class CsvUpload:
    """A CSV file on disk. Construction runs the checks on its head and starts the pass over the rest."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes
        self.size = path.stat().st_size
        check_size(self.size, max_bytes)
        with open(path, "rb") as fh:
            head = fh.read(BINARY_PROBE)
        self.whole = len(head) == self.size
        if not head.strip() and self.whole:
            raise DatasetError("The file is empty.")
        check_not_binary(head)
        try:
            self.text: str | None = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=self.whole)
        except UnicodeDecodeError:
            self.text = None  # the full decode names the byte and line
        self.delimiter = sniff_delimiter(normalise_newlines(self.text)) if self.text else ","
        self._pool = ThreadPoolExecutor(1)
        self._scan = self._pool.submit(scan_file, path, self.delimiter)
        self._pool.shutdown(wait=False)

    @property
    def scan(self) -> Scan:
        return self._scan.result()

    @property
    def sha256(self) -> str:
        return self.scan.sha256

    def _by_text(self, min_columns: int, max_columns: int | None, max_cells: int | None) -> pd.DataFrame:
        """The text parse, for what only the whole text can say (an encoding error, old Mac line endings)."""
        text = decode_csv_text(self.path.read_bytes(), self.max_bytes)
        return parse_csv(text, min_columns=min_columns, max_columns=max_columns, max_cells=max_cells)

    def frame(self, min_columns: int = 2, max_columns: int | None = None, max_cells: int | None = None) -> pd.DataFrame:
        """The parsed, checked frame: the one `csv_parse.parse_csv` gives for the file's text."""
        text = self.text
        if not text or not text.strip():
            return self._by_text(min_columns, max_columns, max_cells)
        try:
            header, spans = read_header(normalise_newlines(text), self.delimiter)
            check_header(header, max_columns)
        except DatasetError:
            if not self.scan.utf8:  # as in the text parse, the encoding is named first
                return self._by_text(min_columns, max_columns, max_cells)
            raise
        if not self.whole and spans >= normalise_newlines(text).count("\n"):
            return self._by_text(min_columns, max_columns, max_cells)  # a header longer than the head
        columns = max(len(header), 1)
        nrows = max_cells // columns + 1 if max_cells else None  # enough to know whether the limit is passed
        # a space opening a field in the head: skip spaces from the start; elsewhere: the scan tells, after
        skip = any(p in text for p in (f"{self.delimiter} ", f"{self.delimiter}\t", "\n ", "\n\t", "\r ", "\r\t"))
        skip = skip or text[:1] in (" ", "\t")
        try:
            df, failure = read_frame(self.path, self.delimiter, nrows=nrows, skip_spaces=skip), None
        except DatasetError as exc:
            df, failure = None, exc
        scan = self.scan
        if not scan.utf8 or scan.lone_cr:
            return self._by_text(min_columns, max_columns, max_cells)
        if scan.spaced and not skip:
            df, failure = read_frame(self.path, self.delimiter, nrows=nrows, skip_spaces=True), None
        if failure is not None:
            raise failure
        assert df is not None
        lines = scan.lf + (not scan.ends_with_lf) - 1
        return check_frame(df, columns, lines, min_columns, max_cells)
