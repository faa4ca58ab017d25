"""`python -m orchestration.health_check`: the engine's health as JSON on stdout, for scripts and monitors.

Exit code 0 ok, 1 degraded, 2 down (orchestration/health.py `check_health`). Settings come from the
environment as for every TrainEasy process (TRAINEASY_HOME, TEMPORAL_ADDRESS, …). The JSON holds no
secret and no server path.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from core.config import load_settings
from orchestration.health import check_health


def main() -> None:
    report = asyncio.run(check_health(load_settings()))
    print(json.dumps(report.to_json(), indent=2), flush=True)
    sys.stderr.flush()
    os._exit(report.exit_code)  # sdk-python #300: interpreter teardown after Temporal can crash; exit code must be ours


if __name__ == "__main__":
    main()
