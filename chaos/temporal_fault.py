"""The Temporal server killed mid-batch and held down for OUTAGE_S (the launcher's restart backoff, set for this
scenario in chaos/__main__.py): the app's facade fails fast meanwhile, the launcher starts Temporal again on the
same SQLite file, and every child of the batch completes."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from chaos.accounting import Outcome, Tally, tally
from chaos.data import TARGET, small_csv
from chaos.driver import RUN_DEADLINE, Driver
from chaos.facade import app_facade
from chaos.stack import running_again
from core.accounts import User
from orchestration.contracts import BatchItem, BatchRequest
from orchestration.views import BatchView
from ui.sync_service import SyncService, Unavailable

OUTAGE_S = 12.0  # the launcher's restart backoff for this scenario: Temporal stays down at least this long
FAIL_FAST_S = 1.0  # once the app's engine watch says down, a read must fail within this

CHILDREN = [BatchItem("logistic_regression", {"C": c}) for c in (0.1, 1.0, 10.0)] + [
    BatchItem("decision_tree_classifier", {"max_depth": d}) for d in (2, 4, 8)
]


async def _batch(driver: Driver, user: User, batch_id: str) -> BatchView | None:
    try:
        return await asyncio.wait_for(driver.service.get_batch(user, batch_id), 30)
    except Exception:
        return None


async def restart_temporal_mid_batch(driver: Driver) -> Tally:
    user = driver.add_user("chaos_batch")
    dataset_id = await driver.dataset(user, "small.csv", small_csv())
    # one child at a time: the batch is mid-way for five children's runs, not two (a few tenths of a second each,
    # which the 0.3 s polling below could miss between two reads)
    request = BatchRequest(user.name, dataset_id, TARGET, items=list(CHILDREN), max_parallel=1)
    batch_id = await driver.service.start_batch(user, request)
    problems: list[str] = []
    notes: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # mid-batch: some children done, some not yet (running or still pending)
        view = await _batch(driver, user, batch_id)
        states = [c.status for c in view.progress.children] if view and view.progress else []
        if states.count("completed") >= 1 and ("pending" in states or "running" in states):
            break
        await asyncio.sleep(0.3)
    else:
        problems.append("the batch was never seen mid-way (some children done, some still to run)")
    stack = driver.stack
    pid = stack.pid_of("temporal")
    app = await asyncio.to_thread(app_facade, driver.settings)
    try:
        os.kill(pid, signal.SIGKILL)
        down = time.monotonic()
        await asyncio.to_thread(_app_fails_fast, app, user, batch_id, problems, notes)
        try:
            back = await asyncio.to_thread(stack.wait_for, "temporal", running_again(pid), 120)
            outage = time.monotonic() - down
            notes.append(f"Temporal running again after {outage:.1f} s (restart {back['restarts']})")
            if outage < 10:
                problems.append(f"the outage lasted {outage:.1f} s, not the 10 s or more this scenario needs")
        except AssertionError as err:
            problems.append(f"the launcher did not bring Temporal back: {str(err).splitlines()[0]}")
    finally:
        await asyncio.to_thread(app.close)
    end = time.monotonic() + RUN_DEADLINE
    view = None
    while time.monotonic() < end:
        view = await _batch(driver, user, batch_id) or view
        if view is not None and not view.running and not view.settling:
            break
        if view is not None and view.progress is not None and view.progress.phase == "awaiting":
            break  # a child failed: the batch waits for its owner to retry or finish it
        await asyncio.sleep(1.0)
    children = view.progress.children if view and view.progress else []
    runs = [(user, c.run_id) for c in children if c.run_id]
    outcomes = await driver.outcomes(runs)
    never_started = len(CHILDREN) - len(runs)
    outcomes += [Outcome(f"{batch_id} child {i}", user.name, "running", message="never started") for i in range(never_started)]
    result = tally("temporal-restart", outcomes, driver.home)
    if view is None or view.status != "completed":
        problems.append(f"the batch ended {view.status if view else 'unread'}, not completed")
    if any(o.status != "completed" for o in outcomes):
        problems.append("not every child completed")
    result.problems += problems
    result.notes += notes
    return result


def _app_fails_fast(app: SyncService, user: User, batch_id: str, problems: list[str], notes: list[str]) -> None:
    """As a page during the outage: once the app's engine watch says down, a batch read raises Unavailable at once."""
    deadline = time.monotonic() + OUTAGE_S
    while not app.engine().down and time.monotonic() < deadline:
        time.sleep(0.1)
    if not app.engine().down:
        problems.append(f"the app's engine watch did not say down within {OUTAGE_S:g} s of the kill")
        return
    asked = time.monotonic()
    try:
        app.get_batch(user, batch_id)
        outcome = "answered"
    except Unavailable as exc:
        outcome = f"Unavailable ({exc})"
    except Exception as exc:
        outcome = f"{type(exc).__name__}"
    took = time.monotonic() - asked
    notes.append(f"during the outage an app read took {took:.2f} s: {outcome}")
    if not outcome.startswith("Unavailable") or took > FAIL_FAST_S:
        problems.append(f"an app read during the outage did not fail fast: {outcome} after {took:.2f} s")
