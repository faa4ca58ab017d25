"""How TrainEasy runs Temporal's dev server (`make run`'s embedded default, and the test and benchmark servers):
the settings it adds to the CLI's defaults, in one place.

The history service reads its transfer queue, which every workflow and activity task passes on its way to a
worker, at most `history.transferProcessorMaxPollRPS` times a second: 20 by default, in a bucket of 20. A burst
after a pause is served at once, but runs back to back drain it, and then each task waits ~50 ms to be handed on
(a tiny run's six stages, ~0.5 s in all). One shard serves everything on the dev server, so one limit paces it
all. The server reads only when told of new tasks (or once a minute), so a higher limit costs nothing when idle.
The timer queue (retries with backoff, the sticky stages' short wait) has the same limit.

With a database file (`make run`), SQLite's default rollback journal syncs the file several times a commit;
write-ahead logging keeps every commit durable (synchronous stays FULL) at a third of the cost.
"""

from __future__ import annotations

DYNAMIC_CONFIG = {
    "history.transferProcessorMaxPollRPS": 1000,
    "history.timerProcessorMaxPollRPS": 1000,
}
SQLITE_PRAGMAS = {"journal_mode": "wal"}  # for a database file; an in-memory one has no journal to speak of


def dev_server_args(database_file: bool) -> list[str]:
    """The `temporal server start-dev` arguments that apply these settings."""
    args: list[str] = []
    for key, value in DYNAMIC_CONFIG.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    if database_file:
        for pragma, setting in SQLITE_PRAGMAS.items():
            args += ["--sqlite-pragma", f"{pragma}={setting}"]
    return args
