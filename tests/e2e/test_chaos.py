"""`make chaos` itself, on its cheapest scenario: `python -m chaos --only temporal-restart` starts its own stack with
the launcher, kills the Temporal server mid-batch and holds it down for over 10 s, during which the app's facade
fails fast, and reports every child completed, the stack still serving, and no SDK retry noise on its console."""

from __future__ import annotations

import re
import subprocess
import sys

from chaos.temporal_fault import CHILDREN
from core.config import PROJECT_ROOT


def test_make_chaos_runs_the_temporal_restart_scenario_and_reports_nothing_lost():
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "--only", "temporal-restart"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr[-3000:]}"
    row = next(line.split() for line in out.splitlines() if line.startswith("temporal-restart "))
    launched, completed, failed, lost, serving, result = row[1:]
    assert launched == completed == str(len(CHILDREN)) and (failed, lost) == ("0", "0")
    assert (serving, result) == ("yes", "pass")
    outage = float(re.search(r"Temporal running again after ([0-9.]+) s", out)[1])  # type: ignore[index]
    assert outage >= 10, out
    took = re.search(r"during the outage an app read took ([0-9.]+) s: Unavailable", out)
    assert took is not None and float(took[1]) <= 1.0, out
    assert "temporalio_client" not in done.stderr and " WARN " not in done.stderr, done.stderr[-3000:]
    assert "1 of 1 scenarios passed; total time" in out
    assert "is kept:" not in out  # a passing run removes its temp home
