"""core.csv_stream: an upload parsed from its path gives the frame the text parse gives, type for type."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.csv_parse import decode_csv_text, parse_csv
from core.csv_stream import CsvUpload
from core.datasets import DatasetError, ingest_csv, profile
from core.staged_parquet import arrow_table
from core.storage import Storage
from tests.helpers import classification_csv

LIMIT = 10 * 2**20

# CSVs whose typing, spacing, line endings or shape are easy to get wrong
CASES = {
    "ints_with_missing_values_are_floats": b"a,b\n1,x\n,y\n3,z\n",
    "dates_stay_text": b"a,d\n1,2024-01-05\n2,2024-02-06\n",
    "timestamps_stay_text": b"a,d\n1,2024-01-05 10:00\n2,2024-02-06 11:00\n",
    "times_stay_text": b"a,t\n1,12:30\n2,13:45:10\n",
    "mixed_column_is_text": b"a,b\n1,x\n2,3\n",
    "leading_zeros_are_ints": b"a,b\n007,1\n010,2\n",
    "na_spellings_are_missing_in_text_columns": b"a,b\nNA,1\nfoo,None\n<NA>,2\n",
    "quoted_na_is_missing": b'a,b\n"NA",1\n"x",2\n',
    "booleans_with_missing_values": b"a,b\nTrue,1\n,2\nfalse,3\n",
    "one_and_true_are_not_booleans": b"a,b\n1,x\ntrue,y\n",
    "empty_column_is_float": b"a,b\n,1\n,2\n",
    "whole_floats_stay_floats": b"a,b\n1.0,1\n2,2\n1e3,3\n",
    "quoted_line_breaks": b'a,b\n1,"x\ny"\n2,z\n',
    "windows_line_endings": b"a,b\r\n1,x\r\n2,y\r\n",
    "utf8_bom": "\ufeffnom,ville\nzoé,café\n".encode(),
    "plus_signed_ints": b"a,b\n+5,1\n-3,2\n",
    "uint64": b"a,b\n18446744073709551615,1\n2,2\n",
    "beyond_64_bits": b"a,b\n184467440737095516150,1\n2,2\n",
    "hex_looking_codes": b"a,b\n0x10,1\n2,2\n",
    "nan_spelling_that_is_text": b"a,b\nNAN,1\n2.5,2\n",
    "spaces_after_delimiters": b"a, b\n1, x\n2,  \n",
    "old_mac_line_endings": b"a,b\r1,x\r2,y\r",
    "trailing_delimiter": b"a,b\n1,x,\n2,y,\n",
    "short_rows": b"a,b,c\n1,2\n3,4,5\n",
    "blank_column_name": b"a,,c\n1,2,3\n4,5,6\n",
    "negative_zero": b"a,b\n0.0,x\n-0.0,x\n,y\n",
}


def _pandas_frame(data: bytes) -> pd.DataFrame:
    return parse_csv(decode_csv_text(data, LIMIT))


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_the_frame_is_the_one_pandas_parses(data, tmp_path):
    path = tmp_path / "up.csv"
    path.write_bytes(data)
    upload = CsvUpload(path, LIMIT)
    df, expected = upload.frame(), _pandas_frame(data)
    pd.testing.assert_frame_equal(df, expected)
    assert profile(df) == profile(expected)


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_the_profile_counted_on_arrow_is_the_one_pandas_counts(data):
    df = _pandas_frame(data)
    try:
        table = arrow_table(df)
    except DatasetError:  # not storable (an integer beyond 64 bits): refused before any profile
        return
    assert profile(df, table) == profile(df)


@pytest.mark.parametrize("staged", [False, True], ids=["bytes", "staged_file"])
@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_the_parquet_is_the_one_pandas_writes(data, staged, tmp_path):
    source = tmp_path / "up.csv" if staged else data
    (tmp_path / "up.csv").write_bytes(data)
    try:
        _pandas_frame(data).to_parquet(tmp_path / "expected.parquet", index=False)
    except OverflowError:  # an integer beyond 64 bits: refused as before, and nothing stored
        with pytest.raises(DatasetError, match="could not be stored"):
            ingest_csv(Storage(tmp_path / "home"), "alice", source, "up.csv", LIMIT)
        assert not [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
        return
    info = ingest_csv(Storage(tmp_path / "home"), "alice", source, "up.csv", LIMIT)
    datasets = tmp_path / "home" / "users" / "alice" / "datasets"
    assert sorted(p.name for p in datasets.rglob("*")) == sorted([info.dataset_id, "data.parquet", "meta.json"])
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
    assert not upload.whole and not upload.scan.spaced
    pd.testing.assert_frame_equal(upload.frame(), _pandas_frame(path.read_bytes()))


@pytest.mark.parametrize("late", ["2, y\n", "2,\ty\n", "  \n", ' 3,"y"\n'])
def test_a_space_opening_a_field_far_into_the_file_is_skipped_as_in_the_text_parse(late, tmp_path, monkeypatch):
    monkeypatch.setattr("core.csv_stream.CHUNK", 4096)
    path = tmp_path / "late.csv"
    path.write_bytes(("a,b\n" + "1,x\n" * 300_000 + late).encode())
    upload = CsvUpload(path, 2**30)
    df = upload.frame()
    assert upload.scan.spaced and not upload.whole
    pd.testing.assert_frame_equal(df, _pandas_frame(path.read_bytes()))


def test_old_mac_line_endings_far_into_the_file_are_read_as_in_the_text_parse(tmp_path, monkeypatch):
    monkeypatch.setattr("core.csv_stream.CHUNK", 4096)
    path = tmp_path / "mac.csv"
    path.write_bytes(("a,b\n" + "1,x\n" * 300_000 + '2,"y\rz"\r3,w\r').encode())
    upload = CsvUpload(path, 2**30)
    df = upload.frame()
    assert upload.scan.lone_cr
    pd.testing.assert_frame_equal(df, _pandas_frame(path.read_bytes()))
    assert df["b"].iloc[-2:].tolist() == ["y\nz", "w"]


def test_a_header_error_in_a_file_not_utf8_far_on_names_the_encoding_first(tmp_path):
    data = ("a,a\n" + "1,2\n" * 300_000 + "3,\xe9\n").encode("latin-1")
    path = tmp_path / "dupes.csv"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"byte 0xe9 on line 300002"):
        ingest_csv(Storage(tmp_path / "home"), "alice", path, "dupes.csv", 2**30)
    with pytest.raises(ValueError, match="repeated: 'a'"):
        ingest_csv(Storage(tmp_path / "home"), "alice", data.replace(b"\xe9", b"4"), "dupes.csv", 2**30)


def test_the_cell_limit_gives_the_text_parse_message(tmp_path):
    data = b"a,b\n" + b"1,2\n" * 1000
    path = tmp_path / "cells.csv"
    path.write_bytes(data)
    with pytest.raises(ValueError) as from_text:
        ingest_csv(Storage(tmp_path / "a"), "alice", data, "cells.csv", LIMIT, max_cells=1000)
    with pytest.raises(ValueError) as from_path:
        ingest_csv(Storage(tmp_path / "b"), "alice", path, "cells.csv", LIMIT, max_cells=1000)
    assert str(from_path.value) == str(from_text.value) and "1,000 rows x 2 columns" in str(from_path.value)
    assert ingest_csv(Storage(tmp_path / "c"), "alice", path, "cells.csv", LIMIT, max_cells=2000).rows == 1000


def test_latin1_past_the_head_is_refused_with_the_same_message(tmp_path):
    data = ("name,drink\n" + "ann,tea\n" * 200_000 + "bob,caf\xe9\n").encode("latin-1")
    path = tmp_path / "latin.csv"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"byte 0xe9 on line 200002"):
        ingest_csv(Storage(tmp_path / "home"), "alice", path, "latin.csv", 2**30)
    assert not (tmp_path / "home").exists() or not any(p.is_file() for p in (tmp_path / "home").rglob("*"))


def test_a_file_stored_before_is_not_parsed_into_a_new_dataset_even_past_a_new_limit(tmp_path):
    path = tmp_path / "up.csv"
    path.write_bytes(classification_csv(rows=50))
    storage = Storage(tmp_path / "home")
    first = ingest_csv(storage, "alice", path, "up.csv", LIMIT)
    assert ingest_csv(storage, "alice", path, "again.csv", LIMIT, max_columns=2) == first  # as before: the stored one
    with pytest.raises(DatasetError, match="the limit is 2 columns"):
        ingest_csv(Storage(tmp_path / "other"), "alice", path, "up.csv", LIMIT, max_columns=2)


SHAPES = {
    "extra_fields_on_the_first_row": b"a,b\n1,2,3,4\n5,6\n",
    "unterminated_quote": b'a,b\n1,"x\n',
    "header_only": b"a,b\n",
    "blank_lines_only": b"\n\n\n",
    "one_column": b"a\n1\n",
    "spaced_quote_in_the_head": b'a,b\n1, "x,y"\n' + b"2,z\n" * 300_000,
    "spaced_quote_past_the_head": b"a,b\n" + b"2,z\n" * 300_000 + b'1, "x,y"\n',
    "ragged_row_past_the_head": b"a,b\n" + b"1,2\n" * 300_000 + b"1,2,3,4\n",
    "lines_of_spaces": b"a,b\n1,2\n" + b" \n" * 5,
}


@pytest.mark.parametrize("data", SHAPES.values(), ids=SHAPES.keys())
def test_a_staged_file_gives_the_dataset_or_the_message_its_bytes_give(data, tmp_path):
    path = tmp_path / "up.csv"
    path.write_bytes(data)
    results: list[object] = []
    for name, source in (("a", data), ("b", path)):
        try:
            info = ingest_csv(Storage(tmp_path / name), "alice", source, "up.csv", 2**30)
            results.append((info.rows, info.column_names, info.columns, info.preview))
        except DatasetError as exc:
            results.append(str(exc))
    assert results[0] == results[1]
