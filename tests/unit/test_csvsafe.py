"""core.csvsafe: cells a spreadsheet would run as formulas are neutralised; numbers are left alone."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from core.csvsafe import frame_to_csv, rows_to_csv, safe_cell, safe_frame

ATTACKS = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "-2+3", "\t=1+1", "\r=1+1"]


def _predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "note": ATTACKS,
            "city": pd.Series(["paris", '=HYPERLINK("http://x")', None, "lyon", "nice", "-x"], dtype=object),
            "income": [-1.5, 2.0, -3.25, 4.0, np.nan, 0.0],
            "age": [-1, 2, 3, 4, 5, 6],
            "prediction": ["yes", "no", "=1+1", "yes", "no", "yes"],
            "probability_yes": [0.1, 0.9, 0.5, 0.2, 0.3, 0.4],
        }
    )


def test_prediction_frame_text_cells_are_neutralised():
    out = safe_frame(_predictions())
    assert out["note"].tolist() == ["'" + a for a in ATTACKS[:-1]] + ["'\r'=1+1"]  # the line after the CR too
    assert out["city"].tolist()[:2] == ["paris", '\'=HYPERLINK("http://x")'] and pd.isna(out["city"][2])
    assert out["prediction"][2] == "'=1+1" and out["city"][5] == "'-x"


def test_numeric_columns_are_unchanged():
    df = _predictions()
    out = safe_frame(df)
    for c in ("income", "age", "probability_yes"):
        pd.testing.assert_series_equal(out[c], df[c])


def test_written_csv_reads_back_with_the_quote_and_the_numbers():
    parsed = pd.read_csv(io.BytesIO(frame_to_csv(_predictions())))
    assert parsed["note"][0] == "'=cmd|' /C calc'!A0"
    assert parsed["income"][0] == -1.5 and parsed["age"][0] == -1


def test_the_input_frame_is_not_modified():
    df = _predictions()
    safe_frame(df)
    assert df["note"][0] == ATTACKS[0]


def test_column_names_are_neutralised():
    out = safe_frame(pd.DataFrame({"=evil()": ["a"], "ok": [1]}))
    assert list(out.columns) == ["'=evil()", "ok"]


def test_categorical_and_string_dtypes():
    df = pd.DataFrame({"cat": pd.Categorical(["=a", "b"]), "s": pd.Series(["@x", "y"], dtype="string")})
    out = safe_frame(df)
    assert out["cat"].tolist() == ["'=a", "b"] and out["s"].tolist() == ["'@x", "y"]


@pytest.mark.parametrize("value", ["-", "-1.5", "+3", "-2e5", ".5", "hello", "", "a=b", 3, -1.5, None])
def test_plain_numbers_and_harmless_text_stay(value):
    assert safe_cell(value) == value


def test_rows_to_csv():
    text = rows_to_csv(["actor", "=x"], [["-", "=1+1"], ["alice", -1.5]]).decode()
    assert list(csv.reader(io.StringIO(text))) == [["actor", "'=x"], ["-", "'=1+1"], ["alice", "-1.5"]]


# --- a line break inside a cell (hostile-user finding: "Smith\r=cmd..." went out unquoted with a bare CR) ----
PAYLOAD = "Smith\r=cmd|' /C calc'!A0"
SAFE_PAYLOAD = "Smith\r'=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (PAYLOAD, SAFE_PAYLOAD),
        ("a\n=1+1", "a\n'=1+1"),
        ("a\r\n@SUM(A1)", "a\r\n'@SUM(A1)"),
        ("ok\n+1+1\r-2+3\n\tx", "ok\n'+1+1\r'-2+3\n'\tx"),
        ("=a\n=b", "'=a\n'=b"),
        ("a\n-1.5\nb", "a\n-1.5\nb"),  # a line that is a plain number stays
        ("two\nlines", "two\nlines"),
    ],
)
def test_every_line_of_a_cell_is_neutralised(value, expected):
    assert safe_cell(value) == expected


def _assert_no_bare_line_break_before_a_formula(data: bytes) -> None:
    """Byte-wise: records end in CRLF; a CR or LF inside a cell is only ever inside quotes and never
    followed by a formula start, so a reader that splits at any CR or LF still finds no formula."""
    for i, byte in enumerate(data[:-1]):
        if byte in b"\r\n":
            assert data[i + 1 : i + 2] not in (b"=", b"+", b"-", b"@", b"\t"), data
    in_quotes = False
    for i, byte in enumerate(data):
        if byte == ord('"'):
            in_quotes = not in_quotes
        elif not in_quotes and byte == ord("\r"):
            assert data[i + 1 : i + 2] == b"\n", f"bare CR outside quotes at {i}: {data!r}"
        elif not in_quotes and byte == ord("\n"):
            assert data[i - 1 : i] == b"\r", f"bare LF outside quotes at {i}: {data!r}"
    for line in data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        assert not line.startswith((b"=", b"+", b"-", b"@", b"\t")), line


def test_prediction_csv_with_a_carriage_return_in_a_cell():
    df = pd.DataFrame({"name": ["alice", PAYLOAD], "income": [1.5, -2.0], "prediction": ["yes", "no\n=1+1"]})
    data = frame_to_csv(df)
    assert data == (b"name,income,prediction\r\nalice,1.5,yes\r\n\"Smith\r'=cmd|' /C calc'!A0\",-2.0,\"no\n'=1+1\"\r\n")
    _assert_no_bare_line_break_before_a_formula(data)
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows == [["name", "income", "prediction"], ["alice", "1.5", "yes"], [SAFE_PAYLOAD, "-2.0", "no\n'=1+1"]]
    assert pd.read_csv(io.BytesIO(data))["name"].tolist() == ["alice", SAFE_PAYLOAD]


def test_rows_csv_with_a_carriage_return_in_a_cell():
    data = rows_to_csv(["who", PAYLOAD], [[PAYLOAD, 1], ["x\r\n@y", -1.5]])
    assert data == (b"who,\"Smith\r'=cmd|' /C calc'!A0\"\r\n\"Smith\r'=cmd|' /C calc'!A0\",1\r\n\"x\r\n'@y\",-1.5\r\n")
    _assert_no_bare_line_break_before_a_formula(data)
    assert list(csv.reader(io.StringIO(data.decode(), newline=""))) == [
        ["who", SAFE_PAYLOAD],
        [SAFE_PAYLOAD, "1"],
        ["x\r\n'@y", "-1.5"],
    ]


def test_column_name_with_a_line_break():
    data = frame_to_csv(pd.DataFrame({PAYLOAD: ["a"]}))
    _assert_no_bare_line_break_before_a_formula(data)
    assert next(csv.reader(io.StringIO(data.decode(), newline=""))) == [SAFE_PAYLOAD]
