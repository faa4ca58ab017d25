"""The training slot a worker process's shared and own queues share: never two activities at once, the shared
queue held back while a run's next stage is on its way, and an own-queue stage refused when taking it could run
two at once (driven here as the SDK drives it: reserve before a poll, mark used when a task comes, release)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

import pytest
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from orchestration.activity_errors import INVALID_INPUT
from orchestration.workflows.policy import RETRY
from workers.training_slot import FOLLOWED, RETRY_HOLD_MAX, TrainingSlot, _retry_in

SHARED, OWN = "tq", "tq-worker-1@here-abc"


def reserve(slot: TrainingSlot, queue: str) -> asyncio.Task:
    return asyncio.create_task(slot.reserve_slot(SimpleNamespace(task_queue=queue)))


def use(slot: TrainingSlot, permit) -> None:
    slot.mark_slot_used(SimpleNamespace(permit=permit, slot_info=None))  # type: ignore[arg-type]


def release(slot: TrainingSlot, permit) -> None:
    slot.release_slot(SimpleNamespace(permit=permit, slot_info=None))  # type: ignore[arg-type]


async def settled(task: asyncio.Task, within: float = 0.2) -> bool:
    """Whether the reservation was given within `within` seconds."""
    try:
        await asyncio.wait_for(asyncio.shield(task), within)
    except TimeoutError:
        return False
    return True


async def test_an_idle_process_polls_both_queues_once_each():
    slot = TrainingSlot(SHARED, OWN)
    shared, own = reserve(slot, SHARED), reserve(slot, OWN)
    assert await settled(shared) and await settled(own)
    second = reserve(slot, SHARED)
    assert not await settled(second)  # one poll per queue: one slot
    release(slot, shared.result())  # that poll came back empty
    assert await settled(second)


async def test_while_a_stage_runs_neither_queue_is_polled_again():
    slot = TrainingSlot(SHARED, OWN, hold_seconds=0)
    permit = await reserve(slot, SHARED)
    use(slot, permit)  # a run's first stage came
    shared, own = reserve(slot, SHARED), reserve(slot, OWN)
    assert not await settled(shared) and not await settled(own)
    release(slot, permit)
    assert await settled(shared) and await settled(own)


async def test_after_a_stage_the_shared_queue_waits_for_the_runs_next_stage():
    slot = TrainingSlot(SHARED, OWN, hold_seconds=30)
    first = await reserve(slot, SHARED)
    use(slot, first)
    slot.hold()  # the stage had a next one
    release(slot, first)
    shared, own = reserve(slot, SHARED), reserve(slot, OWN)
    assert await settled(own) and not await settled(shared)
    use(slot, own.result())  # the next stage came to the own queue: the hold is over, the slot busy
    assert not slot.overbooked()  # no shared-queue poll under way: it runs
    assert not await settled(shared)
    release(slot, own.result())  # the run's last stage ended without a hold
    assert await settled(shared)


async def test_the_hold_ends_by_itself_if_the_next_stage_never_comes():
    slot = TrainingSlot(SHARED, OWN, hold_seconds=0.3)
    slot.hold()
    shared = reserve(slot, SHARED)
    assert not await settled(shared, 0.1)
    assert await settled(shared, 1.0)


async def test_an_own_queue_stage_is_refused_while_a_shared_queue_poll_may_still_hand_over_work():
    slot = TrainingSlot(SHARED, OWN)
    shared, own = await reserve(slot, SHARED), await reserve(slot, OWN)
    use(slot, own)  # a late stage came to the own queue while the shared queue was being polled
    assert slot.overbooked()
    release(slot, own)
    release(slot, shared)
    own = await reserve(slot, OWN)
    use(slot, own)
    assert not slot.overbooked()


async def test_eager_activities_follow_the_same_rule():
    slot = TrainingSlot(SHARED, OWN)
    permit = slot.try_reserve_slot(SimpleNamespace(task_queue=SHARED))
    assert permit is not None
    use(slot, permit)
    assert slot.try_reserve_slot(SimpleNamespace(task_queue=SHARED)) is None
    assert slot.try_reserve_slot(SimpleNamespace(task_queue=OWN)) is None


async def test_a_waiting_poll_can_be_cancelled_at_shutdown():
    slot = TrainingSlot(SHARED, OWN)
    permit = await reserve(slot, SHARED)
    use(slot, permit)
    waiting = reserve(slot, OWN)
    assert not await settled(waiting)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release(slot, permit)
    assert await settled(reserve(slot, OWN))


def test_the_stages_a_next_stage_follows_are_all_but_save():
    assert FOLLOWED == {"load_and_validate", "preprocess_split", "cross_validate", "fit_model", "evaluate_model"}


def info(attempt: int, policy: RetryPolicy | None = RETRY) -> SimpleNamespace:
    return SimpleNamespace(attempt=attempt, retry_policy=policy)


def test_a_retry_comes_after_the_policys_backoff():
    assert _retry_in(info(1), RuntimeError("disk hiccup")) == 1.0  # type: ignore[arg-type]
    assert _retry_in(info(3), RuntimeError("disk hiccup")) == 4.0  # type: ignore[arg-type]
    capped = RetryPolicy(initial_interval=timedelta(seconds=20), maximum_interval=timedelta(seconds=30))
    assert _retry_in(info(4, capped), RuntimeError("x")) == 30.0  # type: ignore[arg-type]
    assert RETRY_HOLD_MAX < 30.0  # the hold itself is capped: a long backoff does not idle the worker


def test_no_retry_after_the_last_attempt_or_a_refusal():
    assert _retry_in(info(RETRY.maximum_attempts), RuntimeError("x")) is None  # type: ignore[arg-type]
    refused = ApplicationError("bad data", type=INVALID_INPUT)
    assert _retry_in(info(1), refused) is None  # type: ignore[arg-type]
    assert _retry_in(info(1, None), RuntimeError("x")) is None  # type: ignore[arg-type]
