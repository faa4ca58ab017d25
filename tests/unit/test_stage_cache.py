"""The per-run cache of a worker process: a value is used only for its run and while its file is the same one;
bounded by count and idle time; a run with a stage in flight keeps its values."""

from __future__ import annotations

from pathlib import Path

from core.storage import write_atomic
from orchestration.stage_cache import RunCache, file_id


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counting(value: object, made: list[object]):
    def make() -> object:
        made.append(value)
        return value

    return make


def test_a_value_is_made_once_then_taken_from_memory_while_its_file_is_the_same(tmp_path: Path):
    cache, made = RunCache(), list[object]()
    data = tmp_path / "split.npz"
    write_atomic(data, b"one")
    assert cache.fetch("run-a", "split", lambda: file_id(data), counting("first", made)) == "first"
    assert cache.fetch("run-a", "split", lambda: file_id(data), counting("second", made)) == "first"
    assert made == ["first"]


def test_a_rewritten_file_is_a_miss_never_a_stale_hit(tmp_path: Path):
    cache, made = RunCache(), list[object]()
    data = tmp_path / "model.skops"
    write_atomic(data, b"old")
    cache.fetch("run-a", "model", lambda: file_id(data), counting("old model", made))
    write_atomic(data, b"old")  # same bytes, written again (by a stage on another worker): another file
    assert cache.fetch("run-a", "model", lambda: file_id(data), counting("new model", made)) == "new model"


def test_values_never_cross_runs(tmp_path: Path):
    cache, made = RunCache(), list[object]()
    data = tmp_path / "data.parquet"
    write_atomic(data, b"rows")
    cache.fetch("run-a", "prepared", lambda: (file_id(data), "request a"), counting("a", made))
    assert cache.fetch("run-b", "prepared", lambda: (file_id(data), "request a"), counting("b", made)) == "b"
    assert cache.fetch("run-a", "prepared", lambda: (file_id(data), "request b"), counting("a2", made)) == "a2"


def test_a_missing_file_is_never_kept(tmp_path: Path):
    cache, made = RunCache(), list[object]()
    gone = tmp_path / "nothing"
    cache.fetch("run-a", "split", lambda: file_id(gone), counting(1, made))
    cache.fetch("run-a", "split", lambda: file_id(gone), counting(2, made))
    assert made == [1, 2] and cache.runs() == []


def test_a_file_replaced_while_it_was_read_is_not_kept(tmp_path: Path):
    cache, made = RunCache(), list[object]()
    data = tmp_path / "data.parquet"
    write_atomic(data, b"v1")

    def read_while_replaced() -> str:
        write_atomic(data, b"v2")
        made.append("read")
        return "v1 or v2"

    cache.fetch("run-a", "prepared", lambda: file_id(data), read_while_replaced)
    cache.fetch("run-a", "prepared", lambda: file_id(data), read_while_replaced)
    assert made == ["read", "read"]


def test_release_drops_the_runs_values(tmp_path: Path):
    cache = RunCache()
    cache.keep("run-a", "model", ("id",), "model")
    cache.keep("run-b", "model", ("id",), "model")
    cache.release("run-a")
    assert cache.runs() == ["run-b"]


def test_at_most_max_runs_are_kept_least_recently_used_first():
    cache = RunCache(max_runs=2)
    cache.keep("run-a", "model", 1, "a")
    cache.keep("run-b", "model", 1, "b")
    assert cache.fetch("run-a", "model", lambda: 1, lambda: "made") == "a"  # a is now the most recent
    cache.keep("run-c", "model", 1, "c")
    assert sorted(cache.runs()) == ["run-a", "run-c"]


def test_idle_runs_are_dropped_but_not_one_with_a_stage_in_flight():
    clock = Clock()
    cache = RunCache(idle_seconds=60, clock=clock)
    cache.keep("idle", "model", 1, "x")
    cache.keep("busy", "model", 1, "y")
    with cache.serving("busy"):
        clock.now = 3600  # an hour-long fit
        cache.sweep()
        assert cache.runs() == ["busy"]
    clock.now += 30
    cache.sweep()
    assert cache.runs() == ["busy"]  # its stage just ended: idle counts from then
    clock.now += 61
    cache.sweep()
    assert cache.runs() == []


def test_a_run_in_flight_is_kept_over_the_count_bound():
    cache = RunCache(max_runs=1)
    with cache.serving("a"):
        cache.keep("a", "model", 1, "a")
        with cache.serving("b"):
            cache.keep("b", "model", 1, "b")
            assert sorted(cache.runs()) == ["a", "b"]  # both in flight: over the bound for now
        assert cache.runs() == ["a"]  # b's stage ended: the bound applies to it, not to a still running
    assert cache.runs() == ["a"]


def test_serving_a_run_that_kept_nothing_leaves_no_entry():
    cache = RunCache()
    with cache.serving("run-a"):
        pass
    assert cache.runs() == []
