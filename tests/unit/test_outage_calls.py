"""During a Temporal outage (no server): the facade refuses at once without starting the call, maps a call
that cannot reach the server to Unavailable("Temporal is not reachable"), and the service answers runs from
what it last read and from the model registry, per user."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

import pytest
from temporalio.service import RPCError, RPCStatusCode

from core.accounts import User
from core.registry import Registry
from core.storage import Storage
from orchestration.engine_watch import EngineWatch
from orchestration.errors import UserError
from orchestration.health import TemporalCheck
from orchestration.known_views import KnownCalls, KnownViews
from orchestration.service import TrainEasyService
from orchestration.views import RunSummary, RunView
from ui.sync_service import SyncService, Unavailable

ALICE, BOB = User("alice"), User("bob")
RUN = "train-alice-" + "a" * 32


class _Service:
    """Stands in for the service: `list_runs` records that it ran, then does what it is told."""

    def __init__(self, outcome: object = None) -> None:
        self.outcome, self.ran = outcome, 0

    async def list_runs(self, user: User) -> list[RunSummary]:
        self.ran += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return []


class _Probe:
    def __init__(self, reachable: bool) -> None:
        self.reachable, self.calls = reachable, 0

    async def __call__(self) -> TemporalCheck:
        self.calls += 1
        return TemporalCheck(self.reachable, None, None if self.reachable else "RPCError: tcp connect error")


def _facade(loop, service: _Service, reachable: bool) -> tuple[SyncService, EngineWatch, _Probe]:
    probe = _Probe(reachable)
    watch = EngineWatch(probe, every=60.0)  # once started, only a poke explains a second probe
    asyncio.run_coroutine_threadsafe(watch.probe_once(), loop).result(5)
    return SyncService(loop, cast(TrainEasyService, service), watch), watch, probe


def test_while_the_watch_says_down_a_call_is_refused_at_once_and_never_started(loop, recwarn):
    service = _Service()
    svc, watch, _ = _facade(loop, service, reachable=False)
    with pytest.raises(Unavailable, match=r"Temporal is not reachable \(since \d\d:\d\d:\d\d UTC\)"):
        svc.list_runs(ALICE)
    assert service.ran == 0
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


@pytest.mark.parametrize(
    "error",
    [
        RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b""),
        RuntimeError("Failed client connect: Server connection error"),
    ],
)
def test_a_call_that_cannot_reach_the_server_is_unavailable_in_plain_words_and_probes_now(loop, error):
    svc, watch, probe = _facade(loop, _Service(error), reachable=True)
    watch.start(loop)
    deadline = time.monotonic() + 5
    while (probe.calls < 2 or watch._wake is None) and time.monotonic() < deadline:  # the started loop's first probe
        time.sleep(0.01)
    before = probe.calls
    with pytest.raises(Unavailable) as raised:
        svc.list_runs(ALICE)
    assert str(raised.value) == "Temporal is not reachable"
    assert "RPCError" not in str(raised.value) and raised.value.__cause__ is None
    deadline = time.monotonic() + 5
    while probe.calls == before and time.monotonic() < deadline:
        time.sleep(0.01)
    watch.stop()
    assert probe.calls > before  # poked: the watch did not wait its minute


@pytest.mark.parametrize(
    "error", [RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""), UserError("The target is not a column.")]
)
def test_other_failures_are_not_called_an_outage(loop, error):
    svc, _, _ = _facade(loop, _Service(error), reachable=True)
    with pytest.raises(type(error)):
        svc.list_runs(ALICE)


class _Known(KnownCalls):
    def __init__(self, registry: Registry) -> None:
        self.registry, self.known = registry, KnownViews()


def _view(status: str) -> RunView:
    return RunView(RUN, status, "logistic_regression", "d1", "bought", None, 3.0, "fit", 40.0)


def _register(registry: Registry, tmp_path, run_id: str = RUN):
    model = tmp_path / "m.skops"
    model.write_bytes(b"x")
    card = {
        "model": "logistic_regression",
        "dataset": {"id": "d1", "name": "shop.csv"},
        "target": "bought",
        "task": "classification",
        "metrics": {"accuracy": 0.9},
        "params": {"C": 2.0},
        "seed": 7,
        "fit_seconds": 1.5,
    }
    return registry.register("alice", "logistic_regression", run_id, model, card)


def test_a_run_is_answered_as_last_read_with_its_time_and_only_to_its_owner(tmp_path):
    calls = _Known(Registry(Storage(tmp_path)))
    read_at = datetime(2025, 1, 1, 12, 0, 5, tzinfo=UTC)
    calls.known.remember("alice", f"run:{RUN}", _view("running"), read_at)
    known = calls.known_run(ALICE, RUN)
    assert known is not None and known.value.status == "running" and known.as_of == read_at and not known.final
    assert calls.known_run(BOB, RUN) is None
    known.value.percent = 99.0  # a page's copy: the remembered view does not change
    again = calls.known_run(ALICE, RUN)
    assert again is not None and again.value.percent == 40.0


def test_a_finished_run_is_answered_from_the_registry(tmp_path):
    registry = Registry(Storage(tmp_path))
    calls = _Known(registry)
    assert calls.known_run(ALICE, RUN) is None
    _register(registry, tmp_path)
    calls.known.remember("alice", f"run:{RUN}", _view("running"))  # it finished after this read
    known = calls.known_run(ALICE, RUN)
    assert known is not None and known.final
    view = known.value
    assert (view.status, view.model, view.target) == ("completed", "logistic_regression", "bought")
    assert view.metrics == {"accuracy": 0.9}
    assert view.request is not None and view.request.params == {"C": 2.0} and view.request.seed == 7
    assert view.facts.fit_seconds == 1.5 and view.facts.model_version == 1
    assert calls.known_run(BOB, RUN) is None


def test_the_run_list_is_the_last_one_read_with_the_registry_s_finished_runs(tmp_path):
    registry = Registry(Storage(tmp_path))
    calls = _Known(registry)
    assert calls.known_runs(ALICE).value == [] and calls.known_runs(ALICE).as_of is None
    other = "train-alice-" + "b" * 32
    calls.known.remember("alice", "runs", [RunSummary(RUN, "running", "logistic_regression", "d1", None, None)])
    _register(registry, tmp_path, RUN)
    _register(registry, tmp_path, other)
    known = calls.known_runs(ALICE)
    assert [(r.run_id, r.status) for r in known.value] == [(RUN, "completed"), (other, "completed")]
    assert known.as_of is not None
    assert calls.known_runs(BOB).value == []


def test_each_user_keeps_a_bounded_number_of_views():
    known = KnownViews(per_user=2)
    for i in range(3):
        known.remember("alice", f"run:{i}", i)
    assert known.recall("alice", "run:0") is None and known.recall("alice", "run:2") is not None
    assert known.recall("bob", "run:2") is None


def test_a_run_read_after_the_list_stays_in_it_with_its_latest_status(tmp_path):
    """An in-flight run started (and opened) after the list was read does not vanish from the list."""
    calls = _Known(Registry(Storage(tmp_path)))
    listed_at = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    older = "train-alice-" + "c" * 32
    calls.known.remember("alice", "runs", [RunSummary(older, "running", "knn_classifier", "d1", listed_at, 1.0)], listed_at)
    started = datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC)
    calls.known.remember("alice", f"run:{RUN}", replace(_view("running"), started_at=started), started)
    calls.known.remember("alice", f"run:{older}", replace(_view("failed"), run_id=older, started_at=listed_at), started)
    known = calls.known_runs(ALICE)
    assert [(r.run_id, r.status) for r in known.value] == [(RUN, "running"), (older, "failed")]
    assert known.as_of == listed_at  # the oldest read the list rests on
    assert calls.known_runs(BOB).value == []


class _Hung(_Service):
    """A call to a server that is stopped, not dead: it never answers (until cancelled)."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = threading.Event()

    async def list_runs(self, user: User) -> list[RunSummary]:
        self.ran += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return []


def test_a_call_under_way_is_given_up_as_soon_as_the_watch_sees_the_outage(loop):
    service = _Hung()
    svc, watch, _ = _facade(loop, service, reachable=True)
    flip = threading.Timer(0.5, lambda: watch.record(TemporalCheck(False, None, "RPCError: deadline exceeded")))
    flip.start()
    started = time.monotonic()
    with pytest.raises(Unavailable, match="Temporal is not reachable"):
        svc.list_runs(ALICE)  # the facade's timeout is 20 s
    waited = time.monotonic() - started
    assert service.ran == 1 and waited < 2.0, waited
    assert service.cancelled.wait(5)  # the call itself is stopped too, not left running on the loop


def test_a_call_that_outlives_its_timeout_says_so_and_is_cancelled(loop):
    service = _Hung()
    svc, _, _ = _facade(loop, service, reachable=True)
    with pytest.raises(TimeoutError):
        svc._run(service.list_runs(ALICE), timeout=0.6)
    assert service.cancelled.wait(5)


class _Slots(_Service):
    def default_parallelism(self) -> int:  # the service reads the workers' heartbeat files only
        return 2


def test_the_batch_default_comes_from_the_workers_files_also_during_an_outage(loop):
    svc, _, _ = _facade(loop, _Slots(), reachable=False)
    assert svc.default_parallelism() == 2  # not "at most 1 at once" because Temporal is down
    assert not asyncio.iscoroutinefunction(TrainEasyService.default_parallelism)
