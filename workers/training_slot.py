"""A worker process's training slot, shared by its two training queues, and the interceptor that keeps a run's
stages on the worker that ran its first one (Temporal's worker-specific task queue pattern, samples-python
`worker_specific_task_queues`).

Each worker process polls the shared training queue and a queue of its own. A run's first stage comes from the
shared queue; every stage's result names the own queue of the worker that ran it, and the workflow sends the
next stage there (orchestration/workflows/training.py), so the data and the model are still in this process's
memory (orchestration/stage_cache.py). The two queues share one slot (TRAIN_SLOTS): two fits at once would
over-subscribe the cores. So that the next stage is not stuck behind another run's fit, the shared queue is not
polled for HOLD_SECONDS after a stage that has a next one ends here (that one comes in milliseconds and ends
the hold; after a failed attempt, its retry does), and a stage that comes on the own queue while a poll of the
shared queue may still hand this process work is refused at once (WORKER_BUSY): the workflow sends it to the
shared queue. With one slot the two never run at once: the shared queue is polled only while nothing runs, and
an own-queue stage is taken only while no shared-queue poll is under way.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    CustomSlotSupplier,
    ExecuteActivityInput,
    FixedSizeSlotSupplier,
    Interceptor,
    SlotMarkUsedContext,
    SlotPermit,
    SlotReleaseContext,
    SlotReserveContext,
    WorkerTuner,
)

from orchestration.contracts import STAGES, WORKER_BUSY, StageResult, TrainInput
from orchestration.stage_cache import RUNS, RunCache
from orchestration.workflows.training import STAGE_OF_ACTIVITY

# How long the shared queue waits, after a stage ends here, for the run's next stage to come to the own queue
# (after a failed one, for its retry: this plus the retry's backoff, up to RETRY_HOLD_MAX).
HOLD_SECONDS = 3.0
RETRY_HOLD_MAX = 10.0
# The stages a next stage follows (all but the last)
FOLLOWED = frozenset(name for name, stage in STAGE_OF_ACTIVITY.items() if stage != STAGES[-1])
OTHER_SLOTS = 100  # workflow tasks (and local activities, Nexus tasks): the SDK's default


class _Permit(SlotPermit):
    def __init__(self, queue: str) -> None:
        self.queue, self.used = queue, False


class TrainingSlot(CustomSlotSupplier):
    """The activity slots of the shared and the own training queue of one process. `mark_slot_used` and
    `release_slot` are called from the SDK's threads, `reserve_slot` on the workers' event loop: a lock, and
    waiters woken through their loop."""

    def __init__(
        self,
        shared: str,
        own: str,
        slots: int = 1,
        hold_seconds: float = HOLD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shared, self.own, self.slots, self.hold_seconds, self._clock = shared, own, slots, hold_seconds, clock
        self._lock = threading.Lock()
        self._permits: dict[str, list[_Permit]] = {shared: [], own: []}
        self._used = 0
        self._hold_until = 0.0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def tuner(self) -> WorkerTuner:
        other = FixedSizeSlotSupplier(OTHER_SLOTS)
        return WorkerTuner.create_composite(
            workflow_supplier=other, activity_supplier=self, local_activity_supplier=other, nexus_supplier=other
        )

    # --- the SDK's side -------------------------------------------------------------------------------
    async def reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit:
        """Called before each poll: wait until this queue may be polled."""
        while True:
            with self._lock:
                wait = self._wait(ctx.task_queue)
                if wait is None:
                    return self._give(ctx.task_queue)
                changed = asyncio.Event()
                self._waiters.append((asyncio.get_running_loop(), changed))
            with suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), None if math.isinf(wait) else wait)

    def try_reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit | None:
        """Eager activities (scheduled by a workflow task this process ran): the same rule, without waiting."""
        with self._lock:
            return self._give(ctx.task_queue) if self._wait(ctx.task_queue) is None else None

    def mark_slot_used(self, ctx: SlotMarkUsedContext) -> None:
        permit = ctx.permit
        if isinstance(permit, _Permit):
            with self._lock:
                permit.used = True
                self._used += 1
                if permit.queue == self.own:
                    self._hold_until = 0.0  # the stage the shared queue waited for has come

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        permit = ctx.permit
        if isinstance(permit, _Permit):
            with self._lock:
                held = self._permits.get(permit.queue, [])
                if permit in held:
                    held.remove(permit)
                if permit.used:
                    permit.used = False
                    self._used -= 1
                waiters, self._waiters = self._waiters, []
            for loop, event in waiters:
                with suppress(RuntimeError):  # its loop is closed: the worker stopped
                    loop.call_soon_threadsafe(event.set)

    def _wait(self, queue: str) -> float | None:
        """None if a permit to poll `queue` may be given now, else how long until it is worth asking again."""
        if self._used >= self.slots or len(self._permits.setdefault(queue, [])) >= self.slots:
            return math.inf
        if queue == self.shared and (left := self._hold_until - self._clock()) > 0:
            return left
        return None

    def _give(self, queue: str) -> _Permit:
        permit = _Permit(queue)
        self._permits[queue].append(permit)
        return permit

    # --- the interceptor's side -------------------------------------------------------------------------
    def hold(self, backoff: float = 0.0) -> None:
        """A stage with a next one (or a retry after `backoff` seconds) is ending here: keep the shared queue
        unpolled until that one comes."""
        with self._lock:
            self._hold_until = self._clock() + min(backoff, RETRY_HOLD_MAX) + self.hold_seconds

    def overbooked(self) -> bool:
        """Taking the own-queue stage that just came could run more than `slots` activities at once: what runs
        (that stage included) plus what a shared-queue poll under way may still hand over."""
        with self._lock:
            return self._used + sum(not p.used for p in self._permits[self.shared]) > self.slots


class StageAffinity(Interceptor):
    """On both training queues' workers: refuses an own-queue stage the slot cannot take now, names the own
    queue in every stage's result, holds the shared queue after a stage that has a next one (or a retry), and
    keeps the run's cache entry while its stage runs (dropped when a stage fails with no retry to come, or is
    cancelled)."""

    def __init__(self, slot: TrainingSlot, cache: RunCache = RUNS) -> None:
        self.slot, self.cache = slot, cache

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Affinity(next, self)


class _Affinity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, affinity: StageAffinity) -> None:
        super().__init__(next)
        self._slot, self._cache = affinity.slot, affinity.cache

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        own = info.task_queue == self._slot.own
        if own and self._slot.overbooked():
            raise ApplicationError(
                "This worker's training slot is taken: any worker may run the stage.",
                info.attempt - 1,  # the attempts that ran here before this one
                type=WORKER_BUSY,
                non_retryable=True,
            )
        run_id = next((arg.run_id for arg in input.args if isinstance(arg, TrainInput)), None)
        if run_id is None:
            return await super().execute_activity(input)
        with self._cache.serving(run_id):
            try:
                result = await super().execute_activity(input)
            except BaseException as err:
                backoff = None if _final(err) else _retry_in(info, err)
                if backoff is None:  # no retry comes: the run fails here (or goes on from the shared queue)
                    self._cache.release(run_id)
                elif own:
                    self._slot.hold(backoff)  # its retry comes back to this queue: wait for it, as for a next stage
                raise
        if isinstance(result, StageResult):
            result.worker_queue = self._slot.own
            if info.activity_type in FOLLOWED:
                self._slot.hold()
        return result


def _retry_in(info: activity.Info, err: BaseException) -> float | None:
    """Seconds until Temporal retries this failed attempt (its retry policy's backoff), None if it does not."""
    policy = info.retry_policy
    if policy is None or (policy.maximum_attempts and info.attempt >= policy.maximum_attempts):
        return None
    if isinstance(err, ApplicationError) and err.type in (policy.non_retryable_error_types or ()):
        return None
    backoff = policy.initial_interval.total_seconds() * policy.backoff_coefficient ** (info.attempt - 1)
    return min(backoff, policy.maximum_interval.total_seconds()) if policy.maximum_interval else backoff


def _final(err: BaseException) -> bool:
    """The run will not come back for this stage: it was cancelled, or refused for good."""
    if isinstance(err, CancelledError | asyncio.CancelledError):
        return True
    return isinstance(err, ApplicationError) and err.non_retryable
