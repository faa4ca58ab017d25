"""Uploads large enough for pandas to read them in pieces on several threads (pandas 3.1 does so for a local file of
5 MB or more): the frame, its types and the stored Parquet are still the text parse's, and its row bound holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.io.parsers.readers as readers
import pytest

from core import csv_stream
from core.csv_parse import decode_csv_text, parse_csv, typed_by_pieces
from core.csv_stream import CsvUpload, count_lines
from core.datasets import DatasetError, ingest_csv
from core.storage import Storage

ROWS = 400_000  # about 7 MB with the columns below: several pieces, whatever the machine's core count


def _csv(last: str, tail_at: int = ROWS - 3, tail: str = "") -> bytes:
    """Rows `i,i/4,word,<last>`; the `last` field of the rows from `tail_at` on is `tail` (a piece of its own)."""
    body = "".join(f"{i},{i / 4},w{i % 7},{last if i < tail_at else tail}\n" for i in range(ROWS))
    return ("n,x,word,last\n" + body).encode()


# each ends with rows typed apart from the rest: pandas' pieces disagree, and the whole column must decide
LARGE = {
    "text_in_a_numeric_column": _csv("1.5", tail="abc"),
    "booleans_then_a_missing_value": _csv("True", tail=""),
    "an_integer_past_2_63_in_the_last_piece": _csv("7", tail=str(2**63 + 5)),
    "integers_then_floats": _csv("7", ROWS // 2, "2.5"),
    "integers_then_booleans": _csv("7", tail="False"),
    "plain_numbers_and_a_bom": b"\xef\xbb\xbf" + _csv("1.25"),
    "quoted_line_breaks_throughout": _csv('"a\nb"'),
    "a_space_opening_a_field_far_on": _csv("5", tail=" 6"),
}


def _text_frame(data: bytes) -> pd.DataFrame:
    return parse_csv(decode_csv_text(data, 2**30))


@pytest.mark.parametrize("data", LARGE.values(), ids=LARGE.keys())
def test_a_large_file_gives_the_frame_of_its_text(data, tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    pd.testing.assert_frame_equal(CsvUpload(path, 2**30).frame(), _text_frame(data))


LARGE_BAD = {
    "a_ragged_row_far_on": _csv("1", tail="2,3"),
    "latin1_far_on": _csv("tea", tail="caf\xe9").replace("caf\xe9".encode(), "caf\xe9".encode("latin-1")),
    "an_unterminated_quote_at_the_end": _csv("1", tail='"2'),
}


@pytest.mark.parametrize("data", LARGE_BAD.values(), ids=LARGE_BAD.keys())
def test_a_large_file_is_refused_with_the_message_of_its_bytes(data, tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    messages = []
    for name, source in (("a", data), ("b", path)):
        with pytest.raises(DatasetError) as refused:
            ingest_csv(Storage(tmp_path / name), "alice", source, "big.csv", 2**30)
        messages.append(str(refused.value))
    assert messages[0] == messages[1]
    assert not [p for p in (tmp_path / "b").rglob("*") if p.is_file()]


def test_a_large_plain_file_is_read_by_pandas_on_several_threads(tmp_path, monkeypatch):
    """What makes the ingest as fast as a plain `read_csv`: pandas' parallel read, which options such as
    `low_memory=False` or `nrows` turn off. (A private pandas function, pinned by requirements.txt: if pandas renames
    it, this test fails and says so.)"""
    results = []

    def spy(*args, **kwargs):
        results.append(parallel(*args, **kwargs))
        return results[-1]

    parallel = readers._read_csv_parallel
    monkeypatch.setattr(readers, "_read_csv_parallel", spy)
    monkeypatch.setattr(readers, "_default_n_workers", lambda: 2)  # as on the 2-core machine the benchmark runs on
    path = tmp_path / "big.csv"
    path.write_bytes(LARGE["plain_numbers_and_a_bom"])
    CsvUpload(path, 2**30).frame(max_cells=50_000_000)
    assert len(results) == 1 and results[0] is not None


def test_the_parquet_of_a_large_file_is_its_texts(tmp_path):
    """Here the draft (spaces not skipped) is written while the file is scanned, and replaced."""
    data = LARGE["a_space_opening_a_field_far_on"]
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    storage = Storage(tmp_path / "home")
    info = ingest_csv(storage, "alice", path, "big.csv", 2**30)
    folder = storage.datasets_dir("alice")
    assert sorted(p.name for p in folder.rglob("*")) == sorted([info.dataset_id, "data.parquet", "meta.json"])
    stored = pd.read_parquet(folder / info.dataset_id / "data.parquet")
    pd.testing.assert_frame_equal(stored, _text_frame(data))
    assert stored["last"].iloc[-1] == 6


def _nrows_of_each_parse(monkeypatch) -> list[int | None]:
    calls: list[int | None] = []
    read_csv = pd.read_csv

    def recorded(*args, **kwargs):
        calls.append(kwargs["nrows"])
        return read_csv(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", recorded)
    return calls


def test_a_file_past_the_cell_limit_is_parsed_only_one_row_past_it(tmp_path, monkeypatch):
    """However short its rows (pandas gives each every column), the parse stops: its lines bound its rows, also
    lines ended by a lone CR (then the text parse decides, after a bounded draft)."""
    calls = _nrows_of_each_parse(monkeypatch)
    path = tmp_path / "short.csv"
    for ending in (b"\n", b"\r"):
        path.write_bytes(b"a,b,c,d\n" + (b"1" + ending) * 5000)
        with pytest.raises(DatasetError, match=r"5,000 rows x 4 columns = 20,000 cells; the limit is 10,000 cells"):
            CsvUpload(path, 2**30).frame(max_cells=10_000)
        assert calls[0] == 2501
        calls.clear()


def test_a_file_under_the_cell_limit_is_parsed_whole_at_once(tmp_path, monkeypatch):
    calls = _nrows_of_each_parse(monkeypatch)
    path = tmp_path / "ok.csv"
    path.write_bytes(b"a,b\r\n" + b"1,2\r\n" * 2500)  # CRLF: the bound counts both breaks, 5,001 rows, and fits
    assert len(CsvUpload(path, 2**30).frame(max_cells=10_002)) == 2500
    assert calls == [None]


@pytest.mark.parametrize(
    "data, lf, cr, ends",
    [(b"a\n1\n", 2, 0, True), (b"a\r\n1", 1, 1, False), (b"a\r1\r", 0, 2, False), (b"", 0, 0, False)],
)
def test_line_breaks_are_counted_across_chunks(data, lf, cr, ends, tmp_path, monkeypatch):
    monkeypatch.setattr("core.csv_stream.CHUNK", 3)
    path = tmp_path / "lines.csv"
    path.write_bytes(data)
    lines = count_lines(path)
    assert (lines.lf, lines.cr, lines.ends_with_lf) == (lf, cr, ends)


@pytest.mark.parametrize("cores", [1, 2, 3, 8])
def test_line_breaks_are_counted_in_parts_on_every_core(cores, tmp_path, monkeypatch):
    monkeypatch.setattr("core.csv_stream.CHUNK", 5)
    monkeypatch.setattr("core.csv_stream._cores", lambda: cores)
    data = b"a,b\r\n1,2\n\n3\r4,5\r\n" * 7 + b"6,7\r"  # breaks on the parts' edges, wherever they fall
    path = tmp_path / "lines.csv"
    path.write_bytes(data)
    lines = count_lines(path)
    assert (lines.lf, lines.cr, lines.ends_with_lf) == (data.count(b"\n"), data.count(b"\r"), False)


def test_the_line_count_holds_a_few_buffers_however_many_cores(tmp_path, monkeypatch):
    """Each part holds two CHUNK buffers: one part per core of a 64-core host was 25 parts of a 200 MB file."""
    monkeypatch.setattr("core.csv_stream.CHUNK", 5)
    monkeypatch.setattr("core.csv_stream._cores", lambda: 64, raising=False)
    monkeypatch.setattr("core.csv_stream.os.cpu_count", lambda: 64)
    parts = []
    real = csv_stream._count_breaks

    def counted(*part):
        parts.append(part)
        return real(*part)

    monkeypatch.setattr("core.csv_stream._count_breaks", counted)
    path = tmp_path / "lines.csv"
    path.write_bytes(b"1,2\n" * 100)
    assert count_lines(path).lf == 100
    assert len(parts) == 4, "COUNT_PARTS"


TYPED_APART = {
    "numbers_and_text": (pd.Series([1.5, "abc"], dtype=object), True),
    "integers_and_text": (pd.Series([1, "abc"], dtype=object), True),
    "booleans_with_missing_values": (pd.Series([True, np.nan, False], dtype=object), False),
    "integers_gathered_with_integers_past_2_63": (pd.Series([1.0, 2.0**63 + 4096]), True),
    "infinity": (pd.Series([1.0, np.inf, -np.inf, np.nan]), False),
    "infinity_and_a_number_past_2_63": (pd.Series([np.inf, np.nan, 2.0**64]), True),
    "text": (pd.Series(["a", None], dtype="str"), False),
}


@pytest.mark.parametrize("column, apart", TYPED_APART.values(), ids=TYPED_APART.keys())
def test_a_column_typed_apart_in_pieces_is_told(column, apart):
    assert typed_by_pieces(pd.DataFrame({"c": column, "n": 1})) is apart
