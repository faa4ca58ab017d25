"""CSV files safe to open in a spreadsheet: no cell a spreadsheet would run as a formula (CSV injection).

Follows OWASP's guidance: a text cell starting with = + - @ tab or carriage return gets a leading
single quote, so Excel, LibreOffice and Google Sheets show it as text. So does every line of a cell
after an embedded line break (CR, LF or CRLF): a reader that splits rows at a bare CR must not find a
formula at the start of a "row" either. Numbers stay numbers: numeric columns are not touched, nor is
a text cell that is a plain decimal number such as "-1.5", or a lone "-" (neither can be a formula).
Column names are treated like cells.

Files are written the RFC 4180 way: CRLF between records, and every field holding a CR, an LF, the
delimiter or a quote is quoted, so a line break inside a cell never reaches the file bare.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_HARMLESS = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|-")  # a plain number, or "-" alone
_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
LINE_TERMINATOR = "\r\n"  # RFC 4180; the csv module then quotes any field holding a CR or an LF


def _risky(text: str) -> bool:
    return text.startswith(FORMULA_STARTS) and not _HARMLESS.fullmatch(text)


def safe_cell(value: Any) -> Any:
    """The value itself, or the text with a leading quote if a spreadsheet would read it as a formula;
    each line after an embedded line break that would start a formula gets a quote as well."""
    if not isinstance(value, str):
        return value
    if "\r" in value or "\n" in value:
        parts = _LINE_BREAK.split(value)  # text, break, text, break, ..., text
        for i in range(2, len(parts), 2):
            if _risky(parts[i]):
                parts[i] = "'" + parts[i]
        value = "".join(parts)
    return "'" + value if _risky(value) else value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with text columns (and column names) neutralised; numeric, boolean and date columns untouched."""
    out = df.rename(columns=safe_cell)
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
            continue
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
        if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            out.isetitem(i, s.map(safe_cell, na_action="ignore"))
    return out


def frame_to_csv(df: pd.DataFrame) -> bytes:
    """The DataFrame as UTF-8 CSV bytes (no index), safe to open in a spreadsheet."""
    return safe_frame(df).to_csv(index=False, lineterminator=LINE_TERMINATOR).encode()


def safe_rows(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    return [[safe_cell(v) for v in row] for row in rows]


def rows_to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows (a header first) as UTF-8 CSV bytes, safe to open in a spreadsheet."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=LINE_TERMINATOR)
    writer.writerows(safe_rows([header, *rows]))
    return buf.getvalue().encode()
