"""The shared measuring tools: repeats (interleaved, median and spread), a figure row, the machine it ran on,
fresh-subprocess runs (which report their own peak memory, VmHWM), and a process tree's peak memory."""

from __future__ import annotations

import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from core.config import PROJECT_ROOT
from ml.child_fit import THREAD_VARS

PACKAGES = ("scikit-learn", "pandas", "numpy", "pyarrow", "joblib", "temporalio")


@dataclass
class Series:
    """Repeated measurements of one side of a figure."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self, fmt: str = "{:.2f}") -> str:
        lo, hi = min(self.values), max(self.values)
        return fmt.format(lo) if lo == hi else f"{fmt.format(lo)}–{fmt.format(hi)}"


@dataclass
class Figure:
    """One row of the table: TrainEasy's value against its baseline, the ratio's spread over repeats, the target."""

    name: str
    unit: str
    traineasy: float
    baseline: float
    ratios: Series
    target: str  # as the issue writes it
    met: bool | None  # None: no target, or not checked (--quick)
    note: str = ""
    repeats: int = 1

    @property
    def ratio(self) -> float:
        return self.ratios.median


def ratio_figure(name: str, unit: str, ours: Series, base: Series, limit: float | None, note: str = "") -> Figure:
    """A figure whose ratio is ours / baseline, repeat by repeat (the pairs were measured side by side)."""
    ratios = Series([a / b for a, b in zip(ours.values, base.values, strict=True)])
    met = None if limit is None else ratios.median <= limit
    target = "—" if limit is None else f"≤ {limit:g}"
    return Figure(name, unit, ours.median, base.median, ratios, target, met, note, len(ratios.values))


async def interleaved(sides: list[Callable[[], float | Awaitable[float]]], repeats: int, label: str) -> list[Series]:
    """Run the sides A, B, A, B, … so that both see the same load; each call returns its own measurement."""
    out = [Series() for _ in sides]
    for r in range(repeats):
        for series, side in zip(out, sides, strict=True):
            value = side()
            series.values.append(await value if inspect.isawaitable(value) else value)
        print(f"    {label} repeat {r + 1}/{repeats}: " + ", ".join(f"{s.values[-1]:.4g}" for s in out), flush=True)
    return out


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


ONE_THREAD = dict.fromkeys(THREAD_VARS, "1")  # as workers/__main__.py sets them


def run_child(module: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """`python -m <module> args` in a fresh process; returns its last stdout line, JSON. A child whose memory is a
    figure reports its own peak (`own_peak_mb`, from /proc/self/status VmHWM): wait4's ru_maxrss would not do, as
    Linux carries the parent's high-water mark over the fork and exec into it (this process has just generated a
    data set)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=PROJECT_ROOT, stdout=out, stderr=err, env={**os.environ, **(env or {})}
        )
        proc.wait()
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{module} {' '.join(args)} exited {proc.returncode}: {err.read()[-2000:]}")
        result: dict = json.loads(out.read().strip().splitlines()[-1])
    return result


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            kids += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    return kids


def child_pids(pid: int) -> list[int]:
    """Every live descendant of a process (what a finished benchmark must not leave behind)."""
    found, todo = [], _children(pid)
    while todo:
        kid = todo.pop()
        found.append(kid)
        todo += _children(kid)
    return found


def describe_process(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        command = "gone"
    return f"{pid} ({command[:120]})"


def hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class TreePeak:
    """The highest resident memory (VmHWM) any one process of these trees reached, sampled every 0.2 s in a thread:
    a worker and the fit children it forks. Start the workers fresh, so that the peak is this run's."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak_mb = pids, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            todo, seen = list(self.pids), set()
            while todo:
                pid = todo.pop()
                if pid not in seen:
                    seen.add(pid)
                    self.peak_mb = max(self.peak_mb, hwm_mb(pid))
                    todo += _children(pid)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def machine() -> str:
    """Cores, CPU model, RAM, Python and the versions that decide the figures; and the load when it ran."""
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    ram = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    packages = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), {ram:.1f} GB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}; {packages}; load average at the start {load}"
    )


def shut_down_loky() -> None:
    """joblib's reusable loky executor keeps its worker processes alive after Parallel returns, and they, with loky's
    and multiprocessing's resource trackers, hold this process's stdout open (a `make bench | tee` did not end): stop
    the executor joblib made, then the trackers (closing their pipe is how they are told to end).

    Not `get_reusable_executor().shutdown()`: called with other arguments than joblib's, it shuts joblib's executor
    down without removing its memory-mapping folders, and starts a new executor only to stop it. joblib's own
    `terminate` removes them."""
    from multiprocessing import resource_tracker

    from joblib.externals.loky import reusable_executor
    from joblib.externals.loky.backend import resource_tracker as loky_tracker

    executor = reusable_executor._executor  # private: the one joblib's Parallel(n_jobs>1) made, if any
    if executor is not None:
        if hasattr(executor, "terminate"):  # joblib's MemmappingExecutor
            executor.terminate()
        executor.shutdown(wait=True)
    for tracker in (loky_tracker._resource_tracker, resource_tracker._resource_tracker):
        tracker._stop()  # type: ignore[union-attr]  # private in both, and the only way to end them before exit
