"""core.datasets: an upload becomes a stored, profiled dataset, or a message the user can act on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import core.datasets as datasets
from core.datasets import DatasetError, ingest_csv, list_datasets, load_info
from core.storage import Storage
from tests.helpers import classification_csv

LIMIT = 10 * 2**20
GOOD = b"age,city,income,member,bought\n30,paris,50.5,True,yes\n,lyon,,False,no\n45,,61.0,True,yes\n52,nice,70.25,False,no\n"


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "home")


def _stored_files(storage):
    return sorted(p.relative_to(storage.root) for p in storage.root.rglob("*") if p.is_file())


# --- a good upload ------------------------------------------------------------------------------


def test_good_csv_is_stored_as_parquet_and_meta(storage):
    info = ingest_csv(storage, "alice", GOOD, "people.csv", LIMIT)
    folder = storage.dataset_dir("alice", info.dataset_id)
    assert sorted(p.name for p in folder.iterdir()) == ["data.parquet", "meta.json"]
    df = pd.read_parquet(folder / "data.parquet")
    assert df.shape == (4, 5)
    assert json.loads((folder / "meta.json").read_text())["rows"] == 4


def test_good_csv_info_has_rows_columns_and_name(storage):
    info = ingest_csv(storage, "alice", GOOD, "../../people.csv", LIMIT)
    assert info.rows == 4
    assert info.column_names == ["age", "city", "income", "member", "bought"]
    assert info.name == "people.csv"
    assert info.size_bytes == len(GOOD)
    assert len(info.dataset_id) == 16 and info.sha256.startswith(info.dataset_id)


def test_profile_counts_missing_values(storage):
    info = ingest_csv(storage, "alice", GOOD, "people.csv", LIMIT)
    assert {c.name: c.missing for c in info.columns} == {"age": 1, "city": 1, "income": 1, "member": 0, "bought": 0}


def test_profile_tells_numeric_from_categorical(storage):
    info = ingest_csv(storage, "alice", GOOD, "people.csv", LIMIT)
    kinds = {c.name: c.kind for c in info.columns}
    assert kinds == {"age": "numeric", "city": "categorical", "income": "numeric", "member": "boolean", "bought": "categorical"}


def test_profile_counts_distinct_values(storage):
    info = ingest_csv(storage, "alice", GOOD, "people.csv", LIMIT)
    assert {c.name: c.unique for c in info.columns}["bought"] == 2


def test_preview_holds_first_rows_with_none_for_missing(storage):
    info = ingest_csv(storage, "alice", GOOD, "people.csv", LIMIT)
    assert len(info.preview) == 4
    assert info.preview[0] == {"age": 30, "city": "paris", "income": 50.5, "member": True, "bought": "yes"}
    assert info.preview[1]["age"] is None and info.preview[2]["city"] is None


def test_preview_is_limited(storage):
    info = ingest_csv(storage, "alice", classification_csv(rows=50), "big.csv", LIMIT)
    assert info.rows == 50
    assert len(info.preview) == datasets.PREVIEW_ROWS


def test_load_info_reads_back_what_ingest_returned(storage):
    info = ingest_csv(storage, "alice", GOOD, "people.csv", LIMIT)
    assert load_info(storage, "alice", info.dataset_id) == info


def test_same_bytes_twice_give_one_dataset(storage):
    first = ingest_csv(storage, "alice", GOOD, "a.csv", LIMIT)
    second = ingest_csv(storage, "alice", GOOD, "b.csv", LIMIT)
    assert second.dataset_id == first.dataset_id
    assert len(list(storage.datasets_dir("alice").iterdir())) == 1


def test_semicolon_separated_file_parses(storage):
    info = ingest_csv(storage, "alice", b"a;b;c\n1;x;2,5\n2;y;3,5\n3;z;4\n", "semi.csv", LIMIT)
    assert info.column_names == ["a", "b", "c"]
    assert info.rows == 3


def test_tab_separated_file_parses(storage):
    info = ingest_csv(storage, "alice", b"a\tb\n1\tx\n2\ty\n", "tabs.tsv", LIMIT)
    assert info.column_names == ["a", "b"]


def test_utf8_bom_is_not_part_of_the_first_column_name(storage):
    data = "\ufeffnom,ville\nzoé,café\nluc,thé\n".encode("utf-8")
    info = ingest_csv(storage, "alice", data, "bom.csv", LIMIT)
    assert info.column_names == ["nom", "ville"]
    assert info.preview[0] == {"nom": "zoé", "ville": "café"}


# --- bad uploads: a helpful message and nothing stored -------------------------------------------

BAD = {
    "empty": (b"", "empty"),
    "whitespace_only": (b"  \n\n\t \r\n", "empty"),
    "nul_bytes": (b"a,b\n1,\x002\n", "binary"),
    "xlsx": (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, "Excel"),
    "gzip": (b"\x1f\x8b\x08\x00" + b"x" * 20, "gzip"),
    "pdf": (b"%PDF-1.7\n...", "PDF"),
    "ragged_rows": (b"a,b\n1,2\n3,4,5\n6,7\n", "could not be parsed"),
    "header_only": (b"a,b,c\n", "no data rows"),
    "single_column": (b"value\n1\n2\n3\n", "two columns"),
    "duplicate_columns": (b"a,b,a\n1,2,3\n4,5,6\n", "unique"),
}


@pytest.mark.parametrize("data, message", BAD.values(), ids=BAD.keys())
def test_bad_upload_is_refused_with_a_message(storage, data, message):
    with pytest.raises(DatasetError, match=message):
        ingest_csv(storage, "alice", data, "upload.csv", LIMIT)


@pytest.mark.parametrize("data", [d for d, _ in BAD.values()], ids=BAD.keys())
def test_bad_upload_stores_nothing(storage, data):
    with pytest.raises(DatasetError):
        ingest_csv(storage, "alice", data, "upload.csv", LIMIT)
    assert _stored_files(storage) == []
    assert list_datasets(storage, "alice") == []


def test_duplicate_columns_message_names_the_column(storage):
    with pytest.raises(DatasetError, match="'score'"):
        ingest_csv(storage, "alice", b"id,score,score\n1,2,3\n", "dupes.csv", LIMIT)


def test_ragged_rows_message_names_the_line(storage):
    with pytest.raises(DatasetError, match="line 3"):
        ingest_csv(storage, "alice", b"a,b\n1,2\n3,4,5\n6,7\n", "ragged.csv", LIMIT)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b'a,b\n1,2\n3,4\n5,"6\n7,8\n', 4),  # pandas says "starting at row 3": records from 0, header included
        (b'a,b\n"x\ny",2\n3,4\n"5,6\n7,8\n', 5),  # a value spanning two lines before it: pandas' row 3 again
        (b'a,b\n1,5"inch\n3,"4\n', 3),  # a quote inside a value opens nothing
    ],
)
def test_an_unclosed_quote_is_named_by_the_line_it_opens_on(storage, tmp_path, data, line):
    from core.csv_parse import read_frame

    with pytest.raises(DatasetError, match=f"a quoted value opened on line {line} is never closed"):
        ingest_csv(storage, "alice", data, "quote.csv", LIMIT)
    (tmp_path / "quote.csv").write_bytes(data)
    with pytest.raises(DatasetError, match=f"a quoted value opened on line {line} is never closed"):
        read_frame(tmp_path / "quote.csv", ",")  # a large upload is parsed from its file


def test_oversized_upload_is_refused_and_stores_nothing(storage):
    with pytest.raises(DatasetError, match="limit"):
        ingest_csv(storage, "alice", GOOD, "big.csv", max_bytes=len(GOOD) - 1)
    assert _stored_files(storage) == []


def test_upload_at_the_size_limit_is_accepted(storage):
    assert ingest_csv(storage, "alice", GOOD, "ok.csv", max_bytes=len(GOOD)).rows == 4


def test_latin1_upload_is_refused_naming_utf8_and_the_line(storage):
    data = "name,drink\nann,tea\nbob,caf\xe9\n".encode("latin-1")
    with pytest.raises(DatasetError) as err:
        ingest_csv(storage, "alice", data, "latin.csv", LIMIT)
    assert "UTF-8" in str(err.value)
    assert "line 3" in str(err.value)
    assert "0xe9" in str(err.value)
    assert _stored_files(storage) == []


# --- listing and loading -------------------------------------------------------------------------


class _Clock:
    """Stands in for datetime in core.datasets: each now() is one minute later."""

    def __init__(self):
        self.t = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self, tz=None):
        self.t += timedelta(minutes=1)
        return self.t


def test_list_datasets_returns_only_the_owners_datasets(storage):
    a = ingest_csv(storage, "alice", classification_csv(seed=1), "a.csv", LIMIT)
    b = ingest_csv(storage, "bob", classification_csv(seed=2), "b.csv", LIMIT)
    assert [i.dataset_id for i in list_datasets(storage, "alice")] == [a.dataset_id]
    assert [i.dataset_id for i in list_datasets(storage, "bob")] == [b.dataset_id]


def test_other_user_cannot_load_a_dataset_by_id(storage):
    a = ingest_csv(storage, "alice", GOOD, "a.csv", LIMIT)
    assert load_info(storage, "bob", a.dataset_id) is None


def test_list_datasets_is_newest_first(storage, monkeypatch):
    monkeypatch.setattr(datasets, "datetime", _Clock())
    ids = [ingest_csv(storage, "alice", classification_csv(seed=s), f"{s}.csv", LIMIT).dataset_id for s in range(3)]
    assert [i.dataset_id for i in list_datasets(storage, "alice")] == ids[::-1]


def test_list_datasets_of_a_new_user_is_empty(storage):
    assert list_datasets(storage, "carol") == []


def test_list_datasets_skips_incomplete_folders(storage):
    (storage.datasets_dir("alice") / "0123456789abcdef").mkdir(parents=True)  # no meta.json yet
    (storage.datasets_dir("alice") / "not-a-dataset").mkdir()
    assert list_datasets(storage, "alice") == []


@pytest.mark.parametrize("dataset_id", ["../x", "..", "", "0123456789ABCDEF", "../../alice/datasets/0123456789abcdef"])
def test_load_info_returns_none_for_malformed_id(storage, dataset_id):
    assert load_info(storage, "alice", dataset_id) is None


def test_load_info_returns_none_for_unknown_id(storage):
    assert load_info(storage, "alice", "0123456789abcdef") is None


def test_a_trailing_delimiter_on_every_row_does_not_shift_columns():
    from core.csv_parse import parse_csv

    df = parse_csv("age,income,label\n20,0.5,yes,\n30,1.5,no,\n")
    assert list(df.columns) == ["age", "income", "label"]
    assert df["age"].tolist() == [20, 30] and df["label"].tolist() == ["yes", "no"]


def test_prediction_files_may_have_a_single_column():
    from core.csv_parse import parse_csv

    assert list(parse_csv("x\n1\n2\n", min_columns=1).columns) == ["x"]


# --- delimiter detection reads a bounded prefix in linear time ------------------------------------------


def _quote_storm(delimiter: str, repeats: int = 21_000) -> bytes:
    """A valid CSV whose second field is one ~63 KB quoted text full of delimiters and single quotes.

    csv.Sniffer's quote-guessing regular expression backtracks over it: 8.2 s for the comma version on
    the development machine (quadratic: 1.2 s at 24 KB), the time the old `_sniff_delimiter` took.
    """
    d = delimiter
    return f'id{d}note\n1{d}"{(d + chr(39) + "a") * repeats}"\n2{d}ok\n'.encode()


@pytest.mark.timeout(5)
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_detection_is_prompt_and_right_on_a_crafted_file(storage, delimiter):
    from core.csv_sniff import sniff_delimiter

    data = _quote_storm(delimiter)
    assert len(data) > 60_000
    assert sniff_delimiter(data.decode()) == delimiter
    info = ingest_csv(storage, "alice", data, "storm.csv", LIMIT)
    assert info.column_names == ["id", "note"] and info.rows == 2


@pytest.mark.timeout(5)
def test_delimiter_detection_of_one_huge_line_of_candidates_is_prompt():
    from core.csv_sniff import sniff_delimiter

    line = ('a,"b;c|d' + '\t"' * 3) * 20_000  # 220 KB, no line break, quotes everywhere
    assert sniff_delimiter(line) in {",", ";", "\t", "|"}
    assert sniff_delimiter('"x' * 100_000) == ","  # an unterminated quote: the default


@pytest.mark.parametrize(
    "text, expected",
    [
        ('name,comment\n"Smith; John","a;b;c"\n"Doe; Jane","x;y"\n', ","),  # delimiters inside quotes
        ('a;b\n"say ""hi"", ok";2\n"x";3\n', ";"),  # escaped quotes
        ("id|price|label\n1|2,5|a\n2|3,5|b\n", "|"),
        ("a\tb c\n1\tx y\n", "\t"),
        ("a;b;c\n1;x;2,5\n2;y;3,5\n3;z;4\n", ";"),
        ("age,income,label\n20,0.5,yes,\n30,1.5,no,\n", ","),  # trailing delimiter
        ("value\n1\n2\n", ","),  # one column: the default
        ("a,b\n\n1,2\n\n3,4\n", ","),  # blank lines
        ("a; b; c\n 1; 2,5; 3\n", ";"),
    ],
)
def test_delimiter_detection_of_ordinary_files(text, expected):
    from core.csv_sniff import sniff_delimiter

    assert sniff_delimiter(text) == expected


def test_pipe_separated_file_parses(storage):
    info = ingest_csv(storage, "alice", b"a|b|c\n1|x|2.5\n2|y|3.5\n", "pipes.csv", LIMIT)
    assert info.column_names == ["a", "b", "c"] and info.rows == 2


def test_delimiter_detection_reads_only_a_prefix():
    from core.csv_sniff import SNIFF_CHARS, sniff_delimiter

    head = "a;b;c\n" + "1;2;3\n" * 100
    assert sniff_delimiter(head + "x,y,z,w\n" * 100_000) == ";"
    assert len(head) < SNIFF_CHARS


# --- caps on the dataset's shape ---------------------------------------------------------------------------


def test_too_many_columns_are_refused_from_the_header_naming_both_figures(storage, monkeypatch):
    header = ",".join(f"c{i}" for i in range(20_000))
    data = (header + "\n" + ",".join(["1"] * 20_000) + "\n").encode()

    def no_full_parse(*args, **kwargs):
        raise AssertionError("the whole file was parsed before the column check")

    monkeypatch.setattr(pd, "read_csv", no_full_parse)
    with pytest.raises(DatasetError, match="20,000 columns; the limit is 1,000 columns"):
        ingest_csv(storage, "alice", data, "wide.csv", LIMIT, max_columns=1000)
    assert _stored_files(storage) == []


def test_a_file_at_the_column_limit_is_accepted(storage):
    assert len(ingest_csv(storage, "alice", GOOD, "ok.csv", LIMIT, max_columns=5).columns) == 5


def test_too_many_cells_are_refused_naming_both_figures(storage):
    data = classification_csv(rows=100)  # 100 rows x 4 columns
    with pytest.raises(DatasetError, match=r"100 rows x 4 columns = 400 cells; the limit is 399 cells"):
        ingest_csv(storage, "alice", data, "big.csv", LIMIT, max_cells=399)
    assert _stored_files(storage) == []


def test_a_file_at_the_cell_limit_is_accepted(storage):
    assert ingest_csv(storage, "alice", classification_csv(rows=100), "ok.csv", LIMIT, max_cells=400).rows == 100


def test_quoted_line_breaks_do_not_refuse_a_file_under_the_cell_limit(storage):
    data = b'a,b\n1,"two\nlines"\n2,"three\nmore\nlines"\n'  # 2 rows x 2 columns, 6 line breaks
    assert ingest_csv(storage, "alice", data, "ok.csv", LIMIT, max_cells=4).rows == 2


# --- line endings ----------------------------------------------------------------------------------------


def test_a_file_with_old_mac_cr_only_line_endings_is_read_like_any_other(storage):
    info = ingest_csv(storage, "alice", GOOD.replace(b"\n", b"\r"), "mac.csv", LIMIT)
    assert info.rows == 4 and info.column_names == ["age", "city", "income", "member", "bought"]
    assert info.preview[0] == {"age": 30.0, "city": "paris", "income": 50.5, "member": True, "bought": "yes"}


def test_windows_and_mixed_line_endings_are_read_too(storage):
    from core.csv_parse import parse_csv

    assert parse_csv("a,b\r\n1,x\r\n2,y\r\n")["b"].tolist() == ["x", "y"]
    assert parse_csv("a,b\r1,x\r\n2,y\n3,z\r")["b"].tolist() == ["x", "y", "z"]


def test_cr_only_files_obey_the_cell_limit(storage):
    """Counting lines on LF only would see one line in a CR-only file and let any size through."""
    with pytest.raises(DatasetError, match=r"100 rows x 4 columns = 400 cells; the limit is 399 cells"):
        ingest_csv(storage, "alice", classification_csv(rows=100).replace(b"\n", b"\r"), "big.csv", LIMIT, max_cells=399)


def test_an_unreadable_header_is_a_plain_dataset_error_not_a_csv_module_error(storage):
    header = "a," + "x" * 200_000 + "\n1,2\n"  # a field beyond the csv module's field size limit
    with pytest.raises(DatasetError, match="header line could not be read"):
        ingest_csv(storage, "alice", header.encode(), "odd.csv", LIMIT)
    assert _stored_files(storage) == []
