"""An upload staged on disk, parsed from its path by pandas' own parser with the options of every upload
(core.csv_parse.read_frame), so the frame, the rules and the messages are the text parse's.

The checks that need only the start of the file (size, binary, encoding, delimiter, header) read a bounded
head. The parse then runs at once, as a draft: pandas reads a large file with several threads. One pass over
the whole file, which the caller runs while the draft's Parquet is written (core.datasets), hashes the bytes
and checks what the head cannot tell: UTF-8 throughout, whether a field anywhere starts with a space or tab
(then the file is read again, skipping those spaces as the text parse does; without any, skipping is a cost
with no effect) and lone CR line endings (old Mac files, read by the text parse, which normalises them).
`confirm` keeps the draft or gives the frame those call for.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
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
)
from core.csv_sniff import sniff_delimiter

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 8 << 20  # bytes hashed, scanned and counted at a time
# the line count's parts at most: each holds two CHUNK buffers (16 MB), and the count is bound by memory
# bandwidth after a few; os.cpu_count() is the host's (64 in a 2-CPU container: 25 parts, ~400 MB, of a 200 MB file)
COUNT_PARTS = 4


@dataclass
class Scan:
    """What the pass over the whole file found."""

    sha256: str = ""
    utf8: bool = True
    lone_cr: bool = False  # a CR not followed by LF
    spaced: bool = False  # a space or tab after a delimiter or a line break (perhaps inside quotes)


def scan_file(path: Path, delimiter: str) -> Scan:
    scan, digest = Scan(), hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    d = delimiter.encode()
    pairs = [d + b" ", d + b"\t", b"\n ", b"\n\t", b"\r ", b"\r\t"]
    last, buffer = b"\n", bytearray(CHUNK)  # the file's start reads as the start of a line
    with open(path, "rb", buffering=0) as fh:
        while size := fh.readinto(buffer):
            chunk = buffer if size == CHUNK else buffer[:size]  # one buffer, no copies
            digest.update(chunk)
            if scan.utf8 and not chunk.isascii():
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    scan.utf8 = False
            # a CR ending the last chunk was counted as one of a CRLF pair, if this chunk goes on with its LF
            scan.lone_cr = scan.lone_cr or (last == b"\r" and chunk[:1] != b"\n")
            if not scan.lone_cr and b"\r" in chunk:
                scan.lone_cr = chunk.count(b"\r") != chunk.count(b"\r\n") + (chunk[-1:] == b"\r")
            if not scan.spaced:
                edge = last + chunk[:1]  # a pair across the chunks' edge
                spaced = (b" " in chunk or b"\t" in chunk) and any(pair in chunk for pair in pairs)
                scan.spaced = spaced or any(pair in edge for pair in pairs)
            last = bytes(chunk[-1:])
    scan.lone_cr = scan.lone_cr or last == b"\r"
    scan.sha256 = digest.hexdigest()
    return scan


@dataclass
class Lines:
    """The file's line breaks, counted before the parse: they bound its rows, so that a file past the cell
    limit is parsed only one row past it (however short its rows, pandas fills every column of each)."""

    lf: int = 0
    cr: int = 0  # counted only when the file holds one
    ends_with_lf: bool = False

    @property
    def data_lines(self) -> int:
        """Data lines, at most, as `csv_parse.data_lines` counts them in the text (the message's figure)."""
        return self.lf + (not self.ends_with_lf) - 1

    @property
    def max_rows(self) -> int:
        """Rows the parse can give, at most: pandas also ends a line at a lone CR."""
        return self.data_lines + self.cr


def count_lines(path: Path) -> Lines:
    """The file's line breaks, counted in as many parts as there are cores to count them on (numpy's counting
    leaves the GIL: two halves take 0.03 s of a 135 MB file where one pass took 0.05, on the parse's path)."""
    size = path.stat().st_size
    parts = max(1, min(_cores(), COUNT_PARTS, size // CHUNK))
    edges = [size * i // parts for i in range(parts + 1)]
    if parts == 1:
        counts = [_count_breaks(path, 0, size)]
    else:
        with ThreadPoolExecutor(parts) as pool:
            counts = list(pool.map(partial(_count_breaks, path), edges, edges[1:]))
    lines = Lines(lf=sum(lf for lf, _ in counts), cr=sum(cr for _, cr in counts))
    if size:
        with open(path, "rb") as fh:
            fh.seek(size - 1)
            lines.ends_with_lf = fh.read(1) == b"\n"
    return lines


def _cores() -> int:
    """The cores this process may run on (the host may have more)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _count_breaks(path: Path, start: int, end: int) -> tuple[int, int]:
    """The LF and CR bytes from `start` to `end` (CRs are counted only in a chunk that holds one)."""
    import numpy as np

    lf = cr = 0
    buffer, found = bytearray(CHUNK), np.empty(CHUNK, bool)  # no allocation per chunk
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        while start < end and (size := fh.readinto(memoryview(buffer)[: min(CHUNK, end - start)])):
            start += size
            data, hits = np.frombuffer(buffer, np.uint8, size), found[:size]
            lf += int(np.count_nonzero(np.equal(data, 10, out=hits)))
            if buffer.find(b"\r", 0, size) >= 0:
                cr += int(np.count_nonzero(np.equal(data, 13, out=hits)))
    return lf, cr


@dataclass
class Draft:
    """The parse from the path, checked, before the pass over the whole file has confirmed it. Neither a frame
    nor a failure: the text parse must decide."""

    frame: pd.DataFrame | None = None
    failure: DatasetError | None = None
    parsed: bool = False  # the frame or failure is the parse's (not the header's)
    skipped_spaces: bool = False
    nrows: int | None = None
    columns: int = 1
    lines: int = 0


class CsvUpload:
    """A CSV file on disk. Construction runs the checks on its head."""

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
        self._scan: Scan | None = None

    @property
    def scan(self) -> Scan:
        """The pass over the whole file, run once, by the first caller."""
        if self._scan is None:
            self._scan = scan_file(self.path, self.delimiter)
        return self._scan

    @property
    def sha256(self) -> str:
        return self.scan.sha256

    def _by_text(self, min_columns: int, max_columns: int | None, max_cells: int | None) -> pd.DataFrame:
        """The text parse, for what only the whole text can say (an encoding error, old Mac line endings)."""
        text = decode_csv_text(self.path.read_bytes(), self.max_bytes)
        return parse_csv(text, min_columns=min_columns, max_columns=max_columns, max_cells=max_cells)

    def draft(self, min_columns: int = 2, max_columns: int | None = None, max_cells: int | None = None) -> Draft:
        """The parse from the path, as if the pass over the whole file will find what the head found."""
        text = self.text
        if not text or not text.strip():
            return Draft()
        try:
            header, spans = read_header(normalise_newlines(text), self.delimiter)
            check_header(header, max_columns)
        except DatasetError as exc:
            return Draft(failure=exc)
        if not self.whole and spans >= normalise_newlines(text).count("\n"):
            return Draft()  # a header longer than the head
        lines = count_lines(self.path)
        columns = max(len(header), 1)
        # past the cell limit, one row more than it allows tells that the limit is passed
        nrows = max_cells // columns + 1 if max_cells and lines.max_rows * columns > max_cells else None
        # a space opening a field in the head: skip spaces from the start; elsewhere: the scan tells, after
        skip = any(p in text for p in (f"{self.delimiter} ", f"{self.delimiter}\t", "\n ", "\n\t", "\r ", "\r\t"))
        skip = skip or text[:1] in (" ", "\t")
        draft = Draft(skipped_spaces=skip, nrows=nrows, columns=columns, lines=lines.data_lines)
        return self._parse(draft, min_columns, max_cells)

    def _parse(self, draft: Draft, min_columns: int, max_cells: int | None) -> Draft:
        try:
            df = read_frame(self.path, self.delimiter, nrows=draft.nrows, skip_spaces=draft.skipped_spaces)
            return replace(draft, frame=check_frame(df, draft.columns, draft.lines, min_columns, max_cells), parsed=True)
        except DatasetError as exc:
            return replace(draft, failure=exc, parsed=True)

    def confirm(
        self, draft: Draft, min_columns: int = 2, max_columns: int | None = None, max_cells: int | None = None
    ) -> pd.DataFrame:
        """The parsed, checked frame: the one `csv_parse.parse_csv` gives for the file's text (the draft's frame
        itself when the pass over the whole file finds nothing against it), or its DatasetError."""
        if draft.frame is None and draft.failure is None:
            return self._by_text(min_columns, max_columns, max_cells)
        scan = self.scan  # as in the text parse, the encoding is named before anything else
        if not scan.utf8 or scan.lone_cr:
            return self._by_text(min_columns, max_columns, max_cells)
        if scan.spaced and draft.parsed and not draft.skipped_spaces:
            draft = self._parse(replace(draft, frame=None, failure=None, skipped_spaces=True), min_columns, max_cells)
        if draft.failure is not None:
            raise draft.failure
        assert draft.frame is not None
        return draft.frame

    def frame(self, min_columns: int = 2, max_columns: int | None = None, max_cells: int | None = None) -> pd.DataFrame:
        """The draft, confirmed."""
        return self.confirm(self.draft(min_columns, max_columns, max_cells), min_columns, max_columns, max_cells)
