"""core.names: every identifier that comes back from a user, a URL or a file name."""

from __future__ import annotations

import pytest

from core.names import InvalidName, check_dataset_id, check_username, display_name, new_run_id, parse_run_id

HEX32 = "0123456789abcdef" * 2


# --- check_username ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "bob", "a1", "data_scientist_2", "x" * 32])
def test_check_username_accepts_lowercase_names(name):
    assert check_username(name) == name


@pytest.mark.parametrize(
    "name", ["al-ice", "Alice", "../alice", "al/ice", "al\\ice", "x" * 33, "", "a", "1alice", "_alice", "alice bob"]
)
def test_check_username_refuses_bad_shapes(name):
    with pytest.raises(InvalidName):
        check_username(name)


@pytest.mark.parametrize("name", [None, 42, b"alice"])
def test_check_username_refuses_non_strings(name):
    with pytest.raises(InvalidName):
        check_username(name)


def test_invalid_name_is_a_value_error():
    assert issubclass(InvalidName, ValueError)


# --- run ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["train", "batch", "ingest", "check", "predict"])
def test_parse_run_id_round_trips_new_run_id(kind):
    assert parse_run_id(new_run_id(kind, "alice")) == (kind, "alice")


def test_new_run_id_is_unique():
    assert new_run_id("train", "alice") != new_run_id("train", "alice")


def test_new_run_id_refuses_bad_owner():
    with pytest.raises(InvalidName):
        new_run_id("train", "../alice")


@pytest.mark.parametrize(
    "run_id",
    [
        "train-alice-../../x",
        f"train-alice-{HEX32}/../../bob",
        f"deploy-alice-{HEX32}",  # unknown kind
        f"Train-alice-{HEX32}",
        f"train-Alice-{HEX32}",
        f"train-alice-{HEX32[:31]}",  # hex too short
        f"train-alice-{HEX32}0",  # hex too long
        f"train-alice-{HEX32.upper()}",
        f"train--{HEX32}",
        "",
    ],
)
def test_parse_run_id_refuses_hostile_ids(run_id):
    with pytest.raises(InvalidName):
        parse_run_id(run_id)


@pytest.mark.parametrize("run_id", [None, 123, b"train-alice-" + HEX32.encode(), ["train", "alice"]])
def test_parse_run_id_refuses_non_strings(run_id):
    with pytest.raises(InvalidName):
        parse_run_id(run_id)


@pytest.mark.parametrize(
    "check, value",
    [
        (check_username, "alice\n"),
        (check_dataset_id, "0123456789abcdef\n"),
        (parse_run_id, f"train-alice-{HEX32}\n"),
    ],
    ids=["username", "dataset_id", "run_id"],
)
def test_validators_refuse_a_trailing_newline(check, value):
    with pytest.raises(InvalidName):
        check(value)


# --- display_name -------------------------------------------------------------------------------


def test_display_name_keeps_a_plain_name():
    assert display_name("sales 2024.csv") == "sales 2024.csv"


def test_display_name_strips_posix_path():
    assert display_name("../../etc/passwd") == "passwd"


def test_display_name_strips_windows_path():
    assert display_name("C:\\Users\\alice\\..\\data.csv") == "data.csv"


def test_display_name_removes_control_characters():
    assert display_name("da\x00ta\r\n\t.csv") == "data.csv"


def test_display_name_removes_right_to_left_override():
    assert display_name("invoice\u202efdp.exe") == "invoicefdp.exe"


@pytest.mark.parametrize("raw", ["", None, "..", "/", "dir/", "\x00\x01", "   "])
def test_display_name_falls_back_when_nothing_is_left(raw):
    assert display_name(raw) == "dataset"


def test_display_name_uses_given_fallback():
    assert display_name("", fallback="upload") == "upload"


def test_display_name_limits_length():
    assert display_name("a" * 500 + ".csv") == "a" * 80
    assert len(display_name("b" * 500, limit=10)) == 10
