"""Worker faults: kill -9 the worker running a fit (the run resumes elsewhere with one model), and a worker that
keeps dying until the launcher gives it up alone (runs launched meanwhile complete on the other worker)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

from temporalio.api.enums.v1 import PendingActivityState

from chaos.accounting import Tally, tally
from chaos.data import SLOW_MODEL, small_csv, wide_csv
from chaos.driver import Driver
from chaos.stack import Child, running_again
from child_process import GIVE_UP_FAILURES
from core.accounts import User
from orchestration.views import RunView

FIT_ACTIVITY = "fit_model"
TREES = 500  # about 20 s of fitting on wide_csv(): time to be killed mid-way


async def fit_worker_pid(driver: Driver, run_id: str) -> int | None:
    """The pid of the worker whose fit of this run is heartbeating now (its identity is `pid@host`), else None."""
    desc = await driver.client.get_workflow_handle(run_id).describe()
    for pending in desc.raw_description.pending_activities:
        started = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        if pending.activity_type.name == FIT_ACTIVITY and started and pending.HasField("last_heartbeat_time"):
            pid = pending.last_worker_identity.split("@", 1)[0]
            return int(pid) if pid.isdigit() else None
    return None


def worker_named(driver: Driver, pid: int) -> str | None:
    return next((name for name, c in driver.stack.children().items() if c["pid"] == pid and name.startswith("worker")), None)


async def kill_worker_mid_fit(driver: Driver) -> Tally:
    user = driver.add_user("chaos_kill")
    dataset_id = await driver.dataset(user, "wide.csv", wide_csv())
    run_id = await driver.launch(user, dataset_id, SLOW_MODEL, n_estimators=TREES)
    problems: list[str] = []
    notes: list[str] = []
    pid, step = None, 0
    deadline = time.monotonic() + 120
    while pid is None and time.monotonic() < deadline:
        view = await driver.view(user, run_id)
        if view is not None and not view.running:
            break
        step = (view.live.step or 0) if view is not None and view.stage == "fit" else 0
        if step >= TREES // 3:  # trees done: a checkpoint (every TRAINEASY_CHECKPOINT_SECONDS) is there to resume from
            pid = await fit_worker_pid(driver, run_id)
        await asyncio.sleep(0.3)
    name = worker_named(driver, pid) if pid else None
    if pid is None or name is None or not driver.stack.is_child(pid):
        problems.append(f"no heartbeating fit on a launcher's worker was found to kill (pid {pid}, child {name})")
    else:
        os.kill(pid, signal.SIGKILL)
        notes.append(f"killed {name} (pid {pid}) at tree {step} of {TREES}")
    ended = await driver.outcome(user, run_id)
    result = tally("kill-worker", [ended], driver.home)
    if name is not None:
        try:
            driver.stack.wait_for(name, running_again(pid or 0), timeout=60)
            notes.append(f"the launcher restarted {name}")
        except AssertionError:
            problems.append(f"the launcher did not restart {name} within 60 s: {driver.stack.children()[name]}")
    if ended.status != "completed":
        problems.append(f"the run did not complete: {ended.status} ({ended.message})")
    view = await driver.view(user, run_id)
    if view is not None and ended.status == "completed":
        notes.append(f"fit resumed from step {view.facts.resumed_from_step}; fit attempt {_attempt(view, 'fit')}")
    result.problems += problems
    result.notes += notes
    return result


def _attempt(view: RunView, stage: str) -> int:
    return next((s.attempt for s in view.stages if s.name == stage), 0)


async def fit_pid(driver: Driver, user: User, run_id: str) -> int | None:
    """The pid of the worker whose fit of this (finished) run counted, from the fit's own facts."""
    view = await driver.view(user, run_id)
    worker = (view.facts.worker or "") if view is not None else ""
    pid = worker.split("@", 1)[0]
    return int(pid) if pid.isdigit() else None


def back_or_given_up(old_pid: int) -> Callable[[Child], bool]:
    back = running_again(old_pid)
    return lambda c: c["state"] == "given-up" or back(c)


async def crash_loop(driver: Driver) -> Tally:
    """Kill -9 one worker each time it comes back, until the launcher gives it up; meanwhile runs are launched."""
    user = driver.add_user("chaos_loop")
    dataset_id = await driver.dataset(user, "small.csv", small_csv())
    stack = driver.stack
    workers = sorted(n for n in stack.children() if n.startswith("worker"))
    victim, others = workers[-1], workers[:-1]
    untouched = {n: stack.pid_of(n) for n in [*others, "temporal", "streamlit"]}
    runs = []
    problems: list[str] = []
    notes: list[str] = []
    killed: list[int] = []
    for _ in range(GIVE_UP_FAILURES + 2):  # failures of earlier scenarios count too: kill until given up
        if stack.children()[victim]["state"] == "given-up":
            break
        pid = stack.pid_of(victim)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        runs.append((user, await driver.launch(user, dataset_id)))  # launched while that worker is dying
        await asyncio.to_thread(stack.wait_for, victim, back_or_given_up(pid), 120)
    gone = stack.children()[victim]
    failures = int(gone.get("failures") or 0)  # the launcher's own count, within its failure window
    earlier = failures - len(killed)
    notes.append(
        f"{victim} {gone['state']}: {len(killed)} kills here + {earlier} earlier = {failures} failures "
        f"(the launcher gives up at {GIVE_UP_FAILURES}; {gone['restarts']} restarts)"
    )
    if gone["state"] != "given-up":
        problems.append(f"the launcher did not give {victim} up: {gone}")
    runs += [(user, await driver.launch(user, dataset_id)) for _ in range(2)]  # and after it was given up
    outcomes = await driver.outcomes(runs)
    result = tally("crash-loop", outcomes, driver.home)
    now = {n: stack.children()[n] for n in untouched}
    changed = [n for n, c in now.items() if c["pid"] != untouched[n] or c["state"] != "running"]
    if changed:
        problems.append(f"giving {victim} up touched others: {', '.join(changed)}")
    if any(o.status != "completed" for o in outcomes):
        problems.append("not every run launched during the crash loop completed")
    fitted_by = [await fit_pid(driver, u, r) for u, r in runs]
    healthy = {untouched[n] for n in others}
    notes.append(
        f"fits ran on {', '.join(others)}: {sum(p in healthy for p in fitted_by)}, "
        f"on {victim} between its kills: {sum(p in killed for p in fitted_by)}"
    )
    if any(p not in healthy for p in fitted_by[-2:]):
        problems.append(f"a run launched after {victim} was given up was not fitted by {', '.join(others)}")
    result.problems += problems
    result.notes += notes
    return result
