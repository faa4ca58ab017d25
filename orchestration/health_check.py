"""`python -m orchestration.health_check [--quiet]`: the engine's health as JSON on stdout, for scripts and monitors.

Exit code 0 ok, 1 degraded, 2 down (orchestration/health.py `check_health`); 64 (EX_USAGE) for a bad argument, so
that a monitor never reads a typo as an outage. Settings come from the
environment as for every TrainEasy process (TRAINEASY_HOME, TEMPORAL_ADDRESS, …). The JSON holds no
secret and no server path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import NoReturn

from core.config import load_settings
from orchestration.health import check_health

USAGE_ERROR = 64  # sysexits' EX_USAGE: argparse's own 2 would read as "down"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m orchestration.health_check",
        description="Check Temporal, the workers, the storage, the app database and the launcher's children. "
        "Settings come from the environment (TRAINEASY_HOME, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, …).",
        epilog=f"Exit code: 0 ok, 1 degraded, 2 down; {USAGE_ERROR} for a bad argument.",
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
