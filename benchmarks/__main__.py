"""`python -m benchmarks [--only NAME] [--quick] [--out FILE]` (`make bench`): every figure of issue 11 as a ratio
against its baseline, measured side by side in one run on a real stack, printed with the machine it ran on and
written to BENCHMARKS.md; nothing is left running afterwards. Exits 1 if a figure could not be measured (an unmet
target is a finding, not a failure)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.batch import batch_figure
from benchmarks.child_fit import child_fit_figure
from benchmarks.end_to_end import big_figures, forest_figures
from benchmarks.harness import Figure, child_pids, describe_process, machine, shut_down_loky
from benchmarks.ingest import ingest_figure
from benchmarks.report import render_markdown, render_text
from benchmarks.sizes import Sizes, quick
from benchmarks.stack import BenchStack, start_stack
from benchmarks.tiny import tiny_figure
from core.config import PROJECT_ROOT

NAMES = ("tiny", "forest", "batch", "ingest", "big", "child-fit")
ON_STACK = {"tiny", "forest", "batch", "big"}


async def measure(names: list[str], sizes: Sizes, errors: list[str]) -> list[Figure]:
    """The figures in the order of `names`; those that need no stack are measured first, before it starts: its
    idle processes (a dev server, a worker and a fork server per core) are not theirs to share the cores with."""
    figures: dict[str, list[Figure]] = {}
    stack: BenchStack | None = None
    tiny_run: str | None = None

    async def one(name: str, make: Callable[[], Awaitable[list[Figure]]]) -> None:
        print(f"- {name} …", flush=True)
        started = time.monotonic()
        try:
            figures.setdefault(name, []).extend(await make())
        except Exception as exc:  # told, and the run goes on with the other figures
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        print(f"  {name} done in {time.monotonic() - started:.0f} s", flush=True)

    async def tiny() -> list[Figure]:
        nonlocal tiny_run
        assert stack is not None
        found, tiny_run = await tiny_figure(stack, sizes)
        return found

    async def forest() -> list[Figure]:
        assert stack is not None
        return await forest_figures(stack, sizes)

    async def batch() -> list[Figure]:
        assert stack is not None
        return await batch_figure(stack, sizes)

    async def big() -> list[Figure]:
        assert stack is not None
        if tiny_run is None:  # the history figure's small side
            await tiny()
        assert tiny_run is not None
        return await big_figures(stack, sizes, tiny_run)

    try:
        for name in sorted(names, key=lambda n: n in ON_STACK):
            if name in ON_STACK and stack is None:
                stack = await start_stack(sizes.folder / "home", os.cpu_count() or 1)
            if name == "tiny":
                await one(name, tiny)
            elif name == "forest":
                await one(name, forest)
            elif name == "batch":
                await one(name, batch)
            elif name == "ingest":
                await one(name, lambda: ingest_figure(sizes))
            elif name == "big":
                await one(name, big)
            elif name == "child-fit":
                await one(name, child_fit_figure)
    finally:
        if stack is not None:
            await stack.stop()
    return [figure for name in names for figure in figures.get(name, [])]


LEFT_WAIT_S = 10.0  # how long processes that are exiting get before they count as left behind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", action="append", choices=NAMES, metavar="NAME", help=f"one of {', '.join(NAMES)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: tests the harness in a minute or two")
    parser.add_argument(
        "--out", type=Path, help="where to write the table (default: BENCHMARKS.md for a full run of all figures)"
    )
    args = parser.parse_args(argv)
    names = [n for n in NAMES if n in (args.only or NAMES)]
    out = args.out or (PROJECT_ROOT / "BENCHMARKS.md" if not args.quick and not args.only else None)
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = machine()
    print(f"Machine: {where}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="traineasy-bench-"))
    sizes = quick(folder) if args.quick else Sizes(folder)
    errors: list[str] = []
    started = time.monotonic()
    try:
        figures = asyncio.run(measure(names, sizes, errors))
    finally:
        shut_down_loky()
        shutil.rmtree(folder, ignore_errors=True)
    wall = time.monotonic() - started
    if args.quick:  # small sizes: the ratios say that the harness works, not whether a target is met
        for figure in figures:
            figure.met = None
    print()
    print(render_text(figures))
    if args.quick:
        print("quick sizes: targets not checked")
    print(f"\nwall time {wall / 60:.1f} min; load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if out is not None and errors:  # a partial table would pass for a whole run
        print(f"not written to {out}: {len(errors)} group(s) failed", flush=True)
    elif out is not None:
        out.write_text(render_markdown(figures, where, wall, command.strip(), when))
        print(f"written to {out}")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    left = child_pids(os.getpid())
    deadline = time.monotonic() + LEFT_WAIT_S
    while left and time.monotonic() < deadline:  # a process still exiting (a fork server after its worker) is not left
        time.sleep(0.1)
        left = child_pids(os.getpid())
    print(f"processes left behind: {'; '.join(map(describe_process, left)) if left else 'none'}", flush=True)
    return 1 if errors or left else 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    os._exit(rc)  # sdk-python #300, as launcher.py: no crash in interpreter teardown after using Temporal
