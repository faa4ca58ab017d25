"""50 launches from 5 users at once: every one completes, none is lost, and none is visible to another user."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from chaos.accounting import Outcome, Tally, tally
from chaos.data import small_csv
from chaos.driver import Driver
from core.accounts import User
from orchestration.errors import NotFound

USERS = 5
PER_USER = 10


async def visible_to_others(driver: Driver, users: list[User], outcomes: list[Outcome]) -> list[Outcome]:
    """Each outcome with the other users who saw it: in their run list, or by opening it."""
    listed = {u.name: {r.run_id for r in await driver.service.list_runs(u)} for u in users}
    checked = []
    for outcome in outcomes:
        seen = [u.name for u in users if u.name != outcome.owner and outcome.run_id in listed[u.name]]
        other = next(u for u in users if u.name != outcome.owner)
        try:
            await driver.service.get_run(other, outcome.run_id)
            seen.append(f"{other.name} (opened it)")
        except NotFound:
            pass
        checked.append(replace(outcome, seen_by=tuple(seen)))
    return checked


async def many_users(driver: Driver) -> Tally:
    users = [driver.add_user(f"chaos_user{i}", max_runs_in_flight=PER_USER, launches_per_minute=PER_USER) for i in range(USERS)]
    datasets = await asyncio.gather(*(driver.dataset(u, "small.csv", small_csv(seed=i)) for i, u in enumerate(users)))
    jobs = [(u, d) for u, d in zip(users, datasets) for _ in range(PER_USER)]
    started = time.monotonic()
    answers = await asyncio.gather(*(driver.launch(u, d) for u, d in jobs), return_exceptions=True)
    launched = time.monotonic() - started
    runs = [(u, a) for (u, _), a in zip(jobs, answers) if isinstance(a, str)]
    refused = [f"{u.name}: {a}" for (u, _), a in zip(jobs, answers) if not isinstance(a, str)]
    outcomes = await visible_to_others(driver, users, await driver.outcomes(runs))
    result = tally("many-users", outcomes, driver.home)
    result.notes.append(f"{len(runs)} launches accepted in {launched:.1f} s; all ended {time.monotonic() - started:.0f} s after")
    result.problems += [f"launch refused: {r}" for r in refused]
    for u in users:
        own = {r.run_id for r in await driver.service.list_runs(u)}
        mine = {run_id for owner, run_id in runs if owner == u}
        if not mine <= own:
            result.problems.append(f"{u.name}'s run list misses {len(mine - own)} of its runs")
    if any(o.status != "completed" for o in outcomes):
        result.problems.append("not every launch completed")
    return result
