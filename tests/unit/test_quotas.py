"""Quotas without Temporal: limits and overrides, the launch ledger, the sliding window, stored bytes, races."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import replace

import pytest

from core.config import load_settings
from core.quota_limits import Limits, OverQuota
from core.quotas import WINDOW_S, Quotas
from core.storage import Storage


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def settings(tmp_path):
    return replace(load_settings(), home=tmp_path)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def quotas(settings, clock):
    return Quotas(Storage(settings.home), settings, clock)


def refused(fn, *args, **kwargs):
    with pytest.raises(OverQuota) as info:
        fn(*args, **kwargs)
    return info.value.refusal


def test_defaults_come_from_settings_and_the_environment(monkeypatch, tmp_path):
    for name in ("MAX_RUNS_IN_FLIGHT", "LAUNCHES_PER_MINUTE", "MAX_STORED_MB", "MAX_CELLS", "TASKS_PER_MINUTE"):
        monkeypatch.delenv(f"TRAINEASY_{name}", raising=False)
    s = load_settings()
    assert Limits.defaults(s) == Limits(3, 10, 2048, 50_000_000, 120)
    monkeypatch.setenv("TRAINEASY_MAX_RUNS_IN_FLIGHT", "5")
    monkeypatch.setenv("TRAINEASY_LAUNCHES_PER_MINUTE", "20")
    monkeypatch.setenv("TRAINEASY_MAX_STORED_MB", "100")
    monkeypatch.setenv("TRAINEASY_MAX_CELLS", "1000000")
    monkeypatch.setenv("TRAINEASY_TASKS_PER_MINUTE", "30")
    q = Quotas(Storage(tmp_path), replace(load_settings(), home=tmp_path))
    assert q.limits_for("alice") == Limits(5, 20, 100, 1_000_000, 30)
    monkeypatch.setenv("TRAINEASY_MAX_RUNS_IN_FLIGHT", "0")
    with pytest.raises(SystemExit, match="at least 1"):
        load_settings()


def test_overrides_are_per_user_partial_and_clearable(quotas):
    assert quotas.limits_for("alice").overridden == frozenset()
    limits = quotas.set_override("alice", set_by="admin", max_runs_in_flight=8, max_stored_mb=10)
    assert (limits.max_runs_in_flight, limits.max_stored_mb, limits.launches_per_minute) == (8, 10, 10)
    assert limits.overridden == {"max_runs_in_flight", "max_stored_mb"}
    assert quotas.limits_for("bob") == quotas.defaults(), "other users keep the defaults"
    # naming one limit leaves the others; None puts one back to the default
    limits = quotas.set_override("alice", launches_per_minute=50, max_stored_mb=None)
    assert (limits.max_runs_in_flight, limits.launches_per_minute, limits.max_stored_mb) == (8, 50, 2048)
    quotas.clear_override("alice")
    assert quotas.limits_for("alice") == quotas.defaults() and not quotas.limits_for("alice").overridden
    # all back to None removes the row too
    quotas.set_override("bob", max_cells=5000)
    assert quotas.set_override("bob", max_cells=None).overridden == frozenset()


@pytest.mark.parametrize(
    "bad",
    [
        {"max_runs_in_flight": 0},
        {"launches_per_minute": -1},
        {"max_cells": 10},
        {"max_stored_mb": 1.5},
        {"tasks_per_minute": True},
        {"nonsense": 3},
    ],
)
def test_bad_overrides_are_refused(quotas, bad):
    with pytest.raises(ValueError):
        quotas.set_override("alice", **bad)
    assert quotas.limits_for("alice") == quotas.defaults()


def test_bad_user_names_never_reach_the_database(quotas):
    with pytest.raises(ValueError):
        quotas.set_override("Robert'); DROP TABLE launch_ledger;--", max_cells=5000)
    with pytest.raises(ValueError):
        quotas.limits_for("../x")


def test_runs_in_flight_limit_counts_open_entries_and_frees_when_closed(quotas, clock):
    for i in range(3):
        assert quotas.reserve_run("alice", f"r{i}", "train", 1) == 1
        clock.t += 1
    r = refused(quotas.reserve_run, "alice", "r3", "train", 1)
    assert (r.limit, r.used, r.allowed, r.retry_after_s) == ("max_runs_in_flight", 3, 3, None)
    assert "3 of 3 runs in flight" in r.message and "finishes" in r.message
    assert quotas.entry("r3") is None, "a refusal reserves nothing"
    assert quotas.reserve_run("bob", "b0", "train", 1) == 1, "bob has slots of his own"
    quotas.mark_closed(["r1"])
    assert quotas.reserve_run("alice", "r3", "train", 1) == 1
    usage = quotas.usage("alice", stored_bytes=0)
    assert (usage.runs_in_flight, usage.launches_last_minute, usage.free_slots) == (3, 4, 0)
    assert usage.caption.startswith("3 of 3 runs in flight · 4 of 10 launches in the last minute")


def test_release_forgets_a_reservation_whose_start_failed(quotas):
    quotas.reserve_run("alice", "r0", "train", 1)
    quotas.release("r0")
    usage = quotas.usage("alice", stored_bytes=0)
    assert usage.runs_in_flight == 0 and usage.launches_last_minute == 0


def test_launches_per_minute_is_a_sliding_window_with_a_retry_after(quotas, clock):
    quotas.set_override("alice", max_runs_in_flight=100, launches_per_minute=3)
    for i, dt in enumerate((0, 10, 20)):  # launches at t0, t0+10, t0+20
        clock.t = 1_000_000.0 + dt
        quotas.reserve_run("alice", f"r{i}", "train", 1)
        quotas.mark_closed([f"r{i}"])  # finished runs still count for the rate
    clock.t = 1_000_000.0 + 25
    r = refused(quotas.reserve_run, "alice", "r3", "train", 1)
    assert (r.limit, r.used, r.allowed, r.retry_after_s) == ("launches_per_minute", 3, 3, 35)
    assert "3 runs or batches in the last minute" in r.message and "allowed in 35 s" in r.message
    assert quotas.usage("alice", stored_bytes=0).next_launch_in_s == 35
    clock.t = 1_000_000.0 + WINDOW_S + 0.5  # the first launch left the window
    quotas.reserve_run("alice", "r3", "train", 1)
    r = refused(quotas.reserve_run, "alice", "r4", "train", 1)
    assert r.retry_after_s == 10  # the launch at t0+10 is the next to leave


def test_a_batch_holds_several_slots_and_is_clamped_to_the_free_ones(quotas):
    quotas.reserve_run("alice", "r0", "train", 1)
    assert quotas.reserve_run("alice", "b0", "batch", 4, min_slots=1) == 2, "clamped to the 2 free slots"
    assert quotas.usage("alice", stored_bytes=0).runs_in_flight == 3
    r = refused(quotas.reserve_run, "alice", "b1", "batch", 2, min_slots=1)
    assert r.limit == "max_runs_in_flight" and r.used == 3
    quotas.mark_closed(["b0"])
    assert quotas.usage("alice", stored_bytes=0).runs_in_flight == 1, "a closed batch gives all its slots back"
    # without min_slots a launch needs all its slots
    r = refused(quotas.reserve_run, "alice", "b2", "batch", 3)
    assert (r.used, r.asked, r.allowed) == (1, 3, 3)


def test_launches_are_refused_once_the_user_stores_too_much(quotas):
    quotas.set_override("alice", max_stored_mb=1)
    r = refused(quotas.reserve_run, "alice", "r0", "train", 1, stored_bytes=2**20)
    assert r.limit == "max_stored_mb" and "1 MB of your 1 MB" in r.message
    assert quotas.reserve_run("alice", "r0", "train", 1, stored_bytes=2**20 - 1) == 1


def test_stored_bytes_counts_datasets_models_predictions_and_runs_only(quotas):
    """runs/ holds the scratch of runs that were cancelled or failed (model, split, checkpoints): it counts."""
    home = quotas.storage.user_dir("alice")
    for sub, size in (
        ("datasets/abc/data.parquet", 1000),
        ("models/rf/v1/model.skops", 500),
        ("predictions/x.csv", 20),
        ("uploads/staged.csv", 10_000),
        ("runs/r/evaluation.json", 7),
        ("runs/cancelled/model.skops", 3000),
        ("runs/cancelled/checkpoint-4.skops", 400),
    ):
        (home / sub).parent.mkdir(parents=True, exist_ok=True)
        (home / sub).write_bytes(b"x" * size)
    assert quotas.stored_bytes("alice") == 1520 + 7 + 3400
    assert quotas.stored_bytes("bob") == 0


def test_a_symbolic_link_is_neither_counted_nor_followed(quotas, tmp_path):
    home = quotas.storage.user_dir("alice")
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "big.bin").write_bytes(b"x" * 50_000)
    (home / "models" / "m" / "v1").mkdir(parents=True)
    (home / "models" / "m" / "v1" / "model.skops").write_bytes(b"x" * 300)
    (home / "models" / "m" / "elsewhere").symlink_to(outside)  # a folder
    (home / "models" / "m" / "v1" / "copy.bin").symlink_to(outside / "deep" / "big.bin")  # a file
    assert quotas.stored_bytes("alice") == 300


def test_uploads_in_progress_count_against_stored_bytes(quotas):
    quotas.set_override("alice", max_stored_mb=1)
    mb = 2**20
    quotas.reserve_task("alice", "i0", "ingest", nbytes=mb // 2, stored_bytes=mb // 4)
    r = refused(quotas.reserve_task, "alice", "i1", "ingest", nbytes=mb // 2, stored_bytes=mb // 4)
    assert (r.limit, r.used, r.asked, r.allowed) == ("max_stored_mb", 3 * mb // 4, mb // 2, mb)
    assert "This needs 0.5 MB more, but you already store 0.8 MB of your 1 MB" in r.message
    quotas.mark_closed(["i0"])  # done: its bytes are on disk now, in stored_bytes
    quotas.reserve_task("alice", "i1", "ingest", nbytes=mb // 2, stored_bytes=mb // 4)
    quotas.reserve_task("alice", "c0", "check"), "tasks without bytes are only rate-limited"


def test_data_tasks_have_their_own_generous_rate_limit(quotas, clock):
    quotas.set_override("alice", tasks_per_minute=5, launches_per_minute=1)
    for i in range(5):
        quotas.reserve_task("alice", f"c{i}", "check")
        clock.t += 2
    r = refused(quotas.reserve_task, "alice", "c5", "predict")
    assert (r.limit, r.used, r.allowed, r.retry_after_s) == ("tasks_per_minute", 5, 5, 50)
    assert "Try again in 50 s" in r.message
    quotas.reserve_run("alice", "r0", "train", 1), "data tasks do not use up launches"
    assert quotas.usage("alice", stored_bytes=0).tasks_last_minute == 5


def test_old_closed_entries_are_pruned(quotas, clock):
    quotas.reserve_run("alice", "r0", "train", 1)
    quotas.reserve_task("alice", "c0", "check")
    quotas.mark_closed(["r0"])
    quotas.reserve_run("alice", "r1", "train", 1)  # still running after two hours
    clock.t += 7200
    quotas.reserve_run("alice", "r2", "train", 1)
    assert quotas.entry("r0") is None and quotas.entry("c0") is None
    assert quotas.entry("r1") is not None and quotas.usage("alice", stored_bytes=0).runs_in_flight == 2


def _contend(home: str, name: str, start_at: float, tries: int, queue) -> None:
    """In another process: try to take slots at the same moment as the others."""
    settings = replace(load_settings(), home=__import__("pathlib").Path(home))
    quotas = Quotas(Storage(settings.home), settings)
    while time.time() < start_at:
        time.sleep(0.001)
    won = 0
    for i in range(tries):
        try:
            quotas.reserve_run("alice", f"{name}-{i}", "train", 1)
            won += 1
        except OverQuota:
            pass
    queue.put(won)


@pytest.mark.slow
def test_reservations_are_race_free_across_processes(quotas, settings):
    """Eight processes grab slots at once; BEGIN IMMEDIATE lets exactly the limit through."""
    quotas.set_override("alice", max_runs_in_flight=3, launches_per_minute=1000)
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold Temporal's threads
    queue = ctx.Queue()
    start_at = time.time() + 3.0
    procs = [ctx.Process(target=_contend, args=(str(settings.home), f"p{i}", start_at, 5, queue)) for i in range(8)]
    for p in procs:
        p.start()
    wins = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(wins) == 3
    assert quotas.usage("alice", stored_bytes=0).runs_in_flight == 3
