"""`make bench` itself, on small sizes: `python -m benchmarks --quick` runs every figure on a real dev server and
worker processes, prints each, writes a well-formed table, and leaves no process behind (none of its session
survives it, and its stdout reaches end-of-file). Performance is not asserted here: that is the benchmark's job."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from benchmarks.report import HEADER
from core.config import PROJECT_ROOT

FIGURES = (
    "batch of 2 equal fits vs joblib",  # --quick's batch
    "tiny run: (TrainEasy − direct) / empty 6-activity workflow",
    "random forest end to end vs a direct single fit + evaluation",
    "histogram gradient boosting end to end (upload + run) vs a plain pandas + scikit-learn script",
    "ingest of the CSV vs read_csv + to_parquet: time",
    "ingest of the CSV vs read_csv + to_parquet: peak memory",
    "worker peak memory during that run vs the plain script's peak",
    "Temporal history of a run",
    "`progress` query p95 during a fit",
    "extra: fit_model activity, child-process fit vs in process",
)


def in_session(sid: int) -> list[str]:
    """Every live process of this session (a process started with start_new_session=True leads its own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session …
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(f"{entry.name}: {cmd[:200]}")
    return found


def test_quick_bench_prints_every_figure_writes_the_table_and_leaves_no_process(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=280)  # returns once every holder of its stdout has closed it
    finally:
        survivors = in_session(proc.pid)
        for line in survivors:  # clean up after a failure, then report it
            os.kill(int(line.split(":")[0]), 9)
    assert proc.returncode == 0, f"{stdout[-3000:]}\n{stderr[-3000:]}"
    assert survivors == [], survivors
    assert "processes left behind: none" in stdout

    machine = next(line for line in stdout.splitlines() if line.startswith("Machine: "))
    assert f"{os.cpu_count()} cores" in machine and "GB RAM" in machine and "Python 3." in machine
    assert re.search(r"scikit-learn \d", machine) and re.search(r"temporalio \d", machine), machine
    for name in FIGURES:
        assert name in stdout, name

    text = out.read_text()
    assert machine.removeprefix("Machine: ") in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table]
    assert cells[0] == list(HEADER)
    assert set(cells[1]) == {"---"}
    rows = {row[0]: row for row in cells[2:]}
    assert sorted(rows) == sorted(FIGURES)
    for name, (_, ours, base, ratio, spread, target, met) in rows.items():
        assert re.fullmatch(r"[0-9.]+ (s|ms|MB|KB)", ours) and re.fullmatch(r"[0-9.]+ (s|ms|MB|KB)", base), name
        assert float(ratio) > 0 and re.fullmatch(r"[0-9.]+(–[0-9.]+)? \(\d+\)", spread), (name, ratio, spread)
        assert met == "—" and (target == "—") == name.startswith("extra:"), (name, met, target)  # --quick: not checked
    assert "quick sizes: targets not checked" in stdout
