"""`python -m orchestration.health_check [--quiet]`: the engine's health as JSON on stdout, for scripts and monitors.

Exit code 0 ok, 1 degraded, 2 down (orchestration/health.py `check_health`). Settings come from the
environment as for every TrainEasy process (TRAINEASY_HOME, TEMPORAL_ADDRESS, …). The JSON holds no
secret and no server path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from core.config import load_settings
from orchestration.health import check_health


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.health_check",
        description="Check Temporal, the workers, the storage, the app database and the launcher's children. "
        "Settings come from the environment (TRAINEASY_HOME, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, …).",
        epilog="Exit code: 0 ok, 1 degraded, 2 down.",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing; only the exit code tells")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)  # --help and a bad argument exit here, before any connection
    report = asyncio.run(check_health(load_settings()))
    if not args.quiet:
        print(json.dumps(report.to_json(), indent=2), flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(report.exit_code)  # sdk-python #300: interpreter teardown after Temporal can crash; exit code must be ours


if __name__ == "__main__":
    main()
