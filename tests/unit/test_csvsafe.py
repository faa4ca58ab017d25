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
    return pd.DataFrame({
        "note": ATTACKS,
        "city": pd.Series(["paris", "=HYPERLINK(\"http://x\")", None, "lyon", "nice", "-x"], dtype=object),
        "income": [-1.5, 2.0, -3.25, 4.0, np.nan, 0.0],
        "age": [-1, 2, 3, 4, 5, 6],
        "prediction": ["yes", "no", "=1+1", "yes", "no", "yes"],
        "probability_yes": [0.1, 0.9, 0.5, 0.2, 0.3, 0.4],
    })


def test_prediction_frame_text_cells_are_neutralised():
    out = safe_frame(_predictions())
    assert out["note"].tolist() == ["'" + a for a in ATTACKS]
    assert out["city"].tolist()[:2] == ["paris", "'=HYPERLINK(\"http://x\")"] and pd.isna(out["city"][2])
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
