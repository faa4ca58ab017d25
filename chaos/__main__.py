"""`python -m chaos [--only NAME]`: start a stack with the launcher in a temp home, run the fault scenarios one after
another on it (restored between them), and print per scenario launched / completed / failed / lost and whether it
still serves. Exits 1 unless every scenario passed."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chaos.accounting import Tally, render, result_word
from chaos.driver import Driver, open_driver, reconnect, still_serving
from chaos.many_users import many_users
from chaos.stack import LaunchedStack, StackError
from chaos.storage_faults import unwritable_storage
from chaos.temporal_fault import OUTAGE_S, restart_temporal_mid_batch
from chaos.worker_faults import crash_loop, kill_worker_mid_fit

# the crash loop leaves a worker given up: last, so that no other scenario pays for a launcher restart; the
# Temporal restart wants a long backoff (a real outage): first, so that the stack is started with it once
SCENARIOS: dict[str, Callable[[Driver], Awaitable[Tally]]] = {
    "temporal-restart": restart_temporal_mid_batch,
    "kill-worker": kill_worker_mid_fit,
    "storage": unwritable_storage,
    "many-users": many_users,
    "crash-loop": crash_loop,
}
STACK_ENV = {
    "TRAINEASY_WORKERS": "2",  # the crash loop needs another worker to carry on
    "TRAINEASY_CHECKPOINT_SECONDS": "2",  # a fit killed a few seconds in has a checkpoint to resume from
    "TRAINEASY_RESTART_BACKOFF": "1",  # the launcher's default
}
# settings one scenario needs of the launcher; the stack is started again with them (and back without after)
SCENARIO_ENV = {"temporal-restart": {"TRAINEASY_RESTART_BACKOFF": f"{OUTAGE_S:g}"}}


def stack_env(name: str) -> dict[str, str]:
    return {**STACK_ENV, **SCENARIO_ENV.get(name, {})}


def whole(stack: LaunchedStack, timeout: float = 60) -> bool:
    """Every child of the launcher running (waiting for ones being restarted); False if one was given up."""
    deadline = time.monotonic() + timeout
    while stack.running and time.monotonic() < deadline:
        states = {c["state"] for c in stack.children().values()}
        if states == {"running"}:
            return True
        if "given-up" in states:
            return False
        time.sleep(0.5)
    return False


async def restore(driver: Driver, env: dict[str, str]) -> Driver:
    """The stack as `make run` leaves it, with the scenario's `env`: when a child was given up (or the launcher is
    gone), or the scenario needs other launcher settings, start it again."""
    stack = driver.stack
    changed = {k: v for k, v in env.items() if stack.env.get(k) != v}
    if not changed and await asyncio.to_thread(whole, stack):
        return driver
    why = f"with {' '.join(f'{k}={v}' for k, v in changed.items())}" if changed else "on the same home"
    print(f"  restoring the stack: the launcher is started again {why}", flush=True)
    stack.env.update(env)
    await asyncio.to_thread(stack.restart)
    return await reconnect(driver)


async def run_one(driver: Driver, name: str) -> Tally:
    started = time.monotonic()
    try:
        result = await SCENARIOS[name](driver)
    except Exception as exc:  # the scenario could not go on: told, and counted as failed
        result = Tally(name, problems=[f"the scenario stopped: {type(exc).__name__}: {str(exc)[:500]}"])
    result.scenario = name
    if result.skipped is None:
        missing, degraded = await still_serving(driver)
        result.serving = not missing
        result.problems += [f"not serving: {m}" for m in missing]
        result.notes += [f"after: {d}" for d in degraded]
    result.seconds = time.monotonic() - started
    return result


async def run(names: list[str], home: Path) -> list[Tally]:
    stack = LaunchedStack(home, extra_env=stack_env(names[0]) if names else STACK_ENV)
    tallies: list[Tally] = []
    try:
        print(f"Starting a stack with the launcher (home {home})…", flush=True)
        await asyncio.to_thread(stack.wait_ready)
        driver = await open_driver(stack)
        for name in names:
            driver = await restore(driver, stack_env(name))
            print(f"- {name} …", flush=True)
            tallies.append(await run_one(driver, name))
            t = tallies[-1]
            print(f"  {name}: {result_word(t)} in {t.seconds:.0f} s (launched {t.launched}, lost {t.lost})", flush=True)
    except StackError as err:
        print(f"error: the stack could not be driven: {str(err)[-3000:]}", file=sys.stderr)
        tallies.append(Tally("stack", problems=[str(err).splitlines()[0]], serving=False))
    finally:
        rc = stack.stop()
        if rc != 0:
            tallies.append(Tally("launcher-stop", problems=[f"the launcher exited {rc} on Ctrl-C"], serving=False))
    return tallies


def quiet_temporal_core() -> None:
    """The SDK's Rust core logs every retried call as a coloured WARN line on stderr ("temporalio_client::retry …
    retried 5 times"): during a planned outage those are expected, and the table says what happened. ERROR only,
    set before this process makes its first client."""
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet))), error_if_already_set=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), metavar="NAME", help=f"one of {', '.join(SCENARIOS)}")
    parser.add_argument("--keep", action="store_true", help="keep the temp home (logs, databases) afterwards")
    args = parser.parse_args(argv)
    names = [n for n in SCENARIOS if n in (args.only or SCENARIOS)]
    home = Path(tempfile.mkdtemp(prefix="traineasy-chaos-"))
    quiet_temporal_core()
    started = time.monotonic()
    tallies = asyncio.run(run(names, home))
    print()
    print(render(tallies, time.monotonic() - started))
    ok = bool(tallies) and all(t.passed for t in tallies)
    if args.keep or not ok:
        print(f"The stack's home (logs in {home / 'logs'}, console in {home / 'launcher.out'}) is kept: {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    import os

    rc = main()
    os._exit(rc)  # sdk-python #300, as launcher.py: no crash in interpreter teardown after using Temporal
