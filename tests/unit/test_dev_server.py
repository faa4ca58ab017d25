"""orchestration/dev_server.py: make run's Temporal dev server reads its task queues without the default pacing of
20 reads a second (a tiny run's stages waited ~50 ms each for it), and keeps its database file in WAL mode; the
test and benchmark servers get the same limits."""

from __future__ import annotations

from core.config import load_settings
from core.storage import Storage
from launcher import temporal_command
from orchestration.dev_server import dev_server_args


def test_make_runs_server_reads_its_queues_unpaced_and_journals_ahead(tmp_path):
    argv = temporal_command(load_settings(), Storage(tmp_path))
    pairs = list(zip(argv, argv[1:], strict=False))
    assert ("--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000") in pairs
    assert ("--dynamic-config-value", "history.timerProcessorMaxPollRPS=1000") in pairs
    assert ("--sqlite-pragma", "journal_mode=wal") in pairs
    assert "--db-filename" in argv


def test_an_in_memory_server_gets_the_same_limits_and_no_pragma():
    args = dev_server_args(database_file=False)
    assert "history.transferProcessorMaxPollRPS=1000" in args and "--sqlite-pragma" not in args
