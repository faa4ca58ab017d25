"""core.csv_stream: an upload parsed from disk by pyarrow gives the frame pandas' parse gives, type for type."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.csv_parse import decode_csv_text, parse_csv
from core.csv_stream import CsvUpload
from core.datasets import DatasetError, ingest_csv, profile
from core.storage import Storage
from tests.helpers import classification_csv

LIMIT = 10 * 2**20

# each: a CSV where pyarrow's own typing differs from pandas', and whether pyarrow still reads it (True) or the
# pandas parse does (False)
CASES = {
    "ints_with_missing_values_are_floats": (b"a,b\n1,x\n,y\n3,z\n", True),
    "dates_stay_text": (b"a,d\n1,2024-01-05\n2,2024-02-06\n", True),
    "timestamps_stay_text": (b"a,d\n1,2024-01-05 10:00\n2,2024-02-06 11:00\n", True),
    "times_stay_text": (b"a,t\n1,12:30\n2,13:45:10\n", True),
    "mixed_column_is_text": (b"a,b\n1,x\n2,3\n", True),
    "leading_zeros_are_ints": (b"a,b\n007,1\n010,2\n", True),
    "na_spellings_are_missing_in_text_columns": (b"a,b\nNA,1\nfoo,None\n<NA>,2\n", True),
    "quoted_na_is_missing": (b'a,b\n"NA",1\n"x",2\n', True),
    "booleans_with_missing_values": (b"a,b\nTrue,1\n,2\nfalse,3\n", True),
    "one_and_true_are_not_booleans": (b"a,b\n1,x\ntrue,y\n", True),
    "empty_column_is_float": (b"a,b\n,1\n,2\n", True),
    "whole_floats_stay_floats": (b"a,b\n1.0,1\n2,2\n1e3,3\n", True),
    "quoted_line_breaks": (b'a,b\n1,"x\ny"\n2,z\n', True),
    "windows_line_endings": (b"a,b\r\n1,x\r\n2,y\r\n", True),
    "utf8_bom": ("\ufeffnom,ville\nzoé,café\n".encode(), True),
    "plus_signed_ints": (b"a,b\n+5,1\n-3,2\n", False),
    "uint64": (b"a,b\n18446744073709551615,1\n2,2\n", False),
    "beyond_64_bits": (b"a,b\n184467440737095516150,1\n2,2\n", False),
    "hex_looking_codes": (b"a,b\n0x10,1\n2,2\n", False),
    "nan_spelling_that_is_text": (b"a,b\nNAN,1\n2.5,2\n", False),
    "spaces_after_delimiters": (b"a, b\n1, x\n2,  \n", False),
    "old_mac_line_endings": (b"a,b\r1,x\r2,y\r", False),
    "trailing_delimiter": (b"a,b\n1,x,\n2,y,\n", False),
    "short_rows": (b"a,b,c\n1,2\n3,4,5\n", False),
    "blank_column_name": (b"a,,c\n1,2,3\n4,5,6\n", False),
}


def _pandas_frame(data: bytes) -> pd.DataFrame:
    return parse_csv(decode_csv_text(data, LIMIT))


@pytest.mark.parametrize("data, by_arrow", CASES.values(), ids=CASES.keys())
def test_the_frame_is_the_one_pandas_parses(data, by_arrow, tmp_path):
    path = tmp_path / "up.csv"
    path.write_bytes(data)
    upload = CsvUpload(path, LIMIT)
    assert (upload._arrow_frame(2, None, None) is not None) == by_arrow
    df, expected = upload.frame(), _pandas_frame(data)
    pd.testing.assert_frame_equal(df, expected)
    assert profile(df) == profile(expected)


@pytest.mark.parametrize("data, by_arrow", CASES.values(), ids=CASES.keys())
def test_the_parquet_is_the_one_pandas_writes(data, by_arrow, tmp_path):
    try:
        _pandas_frame(data).to_parquet(tmp_path / "expected.parquet", index=False)
    except OverflowError:  # an integer beyond 64 bits: refused as before, and nothing stored
        with pytest.raises(DatasetError, match="could not be stored"):
            ingest_csv(Storage(tmp_path / "home"), "alice", data, "up.csv", LIMIT)
        assert not [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
        return
    info = ingest_csv(Storage(tmp_path / "home"), "alice", data, "up.csv", LIMIT)
    stored = tmp_path / "home" / "users" / "alice" / "datasets" / info.dataset_id / "data.parquet"
    assert pq.read_schema(stored).equals(pq.read_schema(tmp_path / "expected.parquet"), check_metadata=True)
    pd.testing.assert_frame_equal(pd.read_parquet(stored), pd.read_parquet(tmp_path / "expected.parquet"))


def test_a_staged_file_and_its_bytes_give_the_same_dataset(tmp_path):
    data = classification_csv(rows=300)
    (tmp_path / "up.csv").write_bytes(data)
    from_file = ingest_csv(Storage(tmp_path / "a"), "alice", tmp_path / "up.csv", "up.csv", LIMIT)
    from_bytes = ingest_csv(Storage(tmp_path / "b"), "alice", data, "up.csv", LIMIT)
    assert {**vars(from_file), "created_at": ""} == {**vars(from_bytes), "created_at": ""}
    assert from_file.size_bytes == len(data) and from_file.rows == 300


def test_a_file_past_the_head_is_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr("core.csv_stream.CHUNK", 4096)  # many chunks: patterns across their edges are found too
    rows = "".join(f"{i},{i * 0.5},{'abc'[i % 3]}\n" for i in range(200_000))
    path = tmp_path / "big.csv"
    path.write_bytes(("n,x,label\n" + rows).encode())
    upload = CsvUpload(path, 2**30)
    assert not upload.whole and upload._arrow_frame(2, None, None) is not None
    pd.testing.assert_frame_equal(upload.frame(), _pandas_frame(path.read_bytes()))


def test_a_space_after_a_delimiter_far_into_the_file_takes_the_pandas_parse(tmp_path, monkeypatch):
    monkeypatch.setattr("core.csv_stream.CHUNK", 4096)
    path = tmp_path / "late.csv"
    path.write_bytes(("a,b\n" + "1,x\n" * 300_000 + "2, y\n").encode())
    upload = CsvUpload(path, 2**30)
    assert upload.scan.risky and upload._arrow_frame(2, None, None) is None
    assert upload.frame()["b"].iloc[-1] == "y"


def test_latin1_past_the_head_is_refused_with_the_same_message(tmp_path):
    data = ("name,drink\n" + "ann,tea\n" * 200_000 + "bob,caf\xe9\n").encode("latin-1")
    path = tmp_path / "latin.csv"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"byte 0xe9 on line 200002"):
        ingest_csv(Storage(tmp_path / "home"), "alice", path, "latin.csv", 2**30)
    assert not (tmp_path / "home").exists() or not any(p.is_file() for p in (tmp_path / "home").rglob("*"))
