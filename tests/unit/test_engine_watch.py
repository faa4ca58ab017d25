"""orchestration.engine_watch: up/down flips, since-when kept through an outage, no double counting, and the
loop that probes (no server: the probe is scripted)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from orchestration.engine_watch import EngineWatch
from orchestration.health import TemporalCheck
from ui.engine_banner import ago, banner_text

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
DOWN = TemporalCheck(False, None, "RPCError: tcp connect error")
UP = TemporalCheck(True, 1.5)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Script:
    """A probe that answers from a list (the last answer repeats), counting its calls."""

    def __init__(self, *answers: TemporalCheck | Exception) -> None:
        self.answers, self.calls = list(answers), 0

    async def __call__(self) -> TemporalCheck:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_it_is_up_until_a_probe_fails():
    state = EngineWatch(Script(UP)).snapshot()
    assert state.up and state.down_since is None and state.outages == 0


def test_an_outage_starts_at_the_first_failed_probe_and_is_counted_once():
    clock = Clock()
    watch = EngineWatch(Script(DOWN), clock=clock)
    first = asyncio.run(watch.probe_once())
    assert first.down and first.down_since == T0 and first.outages == 1 and first.last_error == DOWN.error
    for _ in range(3):  # later failures of the same outage move neither since-when nor the count
        clock.tick(2)
        later = asyncio.run(watch.probe_once())
    assert later.down and later.down_since == T0 and later.outages == 1
    assert later.checked_at == T0 + timedelta(seconds=6)
    assert "since 12:00:00 UTC" in later.reason() and "Temporal is not reachable" in later.reason()


def test_the_first_success_ends_the_outage_and_the_next_one_has_its_own_since():
    clock = Clock()
    watch = EngineWatch(Script(DOWN, DOWN, UP, UP, DOWN), clock=clock)
    states = []
    for _ in range(5):
        states.append(asyncio.run(watch.probe_once()))
        clock.tick(2)
    assert [s.up for s in states] == [False, False, True, True, False]
    assert states[2].down_since is None and states[2].last_error is None
    assert states[4].down_since == T0 + timedelta(seconds=8) and states[4].outages == 2


def test_a_server_that_refuses_the_app_is_down_with_its_reason_and_no_promise_of_recovering_by_itself():
    refusing = TemporalCheck(True, 2.0, "RPCError: namespace x not found", "the namespace 'x' does not exist there")
    state = asyncio.run(EngineWatch(Script(refusing)).probe_once())
    assert state.down and state.refused
    assert state.reason().startswith("Temporal answers but refuses: the namespace 'x' does not exist there (since ")
    text = banner_text(state, T0)
    assert "answers but refuses" in text and "not reachable" not in text
    assert "recovers by itself" not in state.recovery().split(";")[0] and "settings" in state.recovery()


def test_a_probe_that_breaks_is_down_not_silently_up():
    state = asyncio.run(EngineWatch(Script(ValueError("a bug in the probe"))).probe_once())
    assert state.down and not state.refused and state.last_error == "ValueError: a bug in the probe"


def _eventually(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.01)


def test_started_on_a_loop_it_probes_on_its_own_and_a_poke_probes_at_once(loop):
    probe = Script(UP, DOWN)
    watch = EngineWatch(probe, every=60.0)  # so only the first probe and the poke can explain a second one
    watch.start(loop)
    assert watch.wait_first(5).up
    _eventually(lambda: watch._wake is not None)
    watch.poke()
    _eventually(lambda: watch.snapshot().down)
    watch.stop()
    assert probe.calls == 2


def test_the_banner_says_what_is_down_since_when_and_what_still_works():
    watch = EngineWatch(Script(DOWN), clock=lambda: T0)
    state = asyncio.run(watch.probe_once())
    text = banner_text(state, T0 + timedelta(minutes=3, seconds=10))
    assert "not reachable" in text and "since 12:00:00 UTC (3 min ago)" in text
    assert "Launching is disabled" in text and "datasets, models and finished results" in text
    assert "recovers by itself" in text
    assert ago(T0, T0 + timedelta(seconds=42)) == "42 s ago"
