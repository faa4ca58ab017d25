"""One side of the ingest figure, in a fresh process (so that its peak memory is its own):
`python -m benchmarks.ingest_child traineasy|pandas CSV FOLDER`. `traineasy` stages the upload as the service does
and runs the worker's ingest activity (DataActivities.ingest_dataset: ingest_csv, validation, Parquet, profile);
`pandas` is read_csv + to_parquet. Prints the seconds of the work (after the imports, the lazy ones of the activity
too) and the process's peak resident memory as JSON.

The peak is read from /proc/self/status (VmHWM: this process's address space, made new at exec), not from wait4's
ru_maxrss: Linux carries the parent's high-water mark over the fork and exec into that figure, so a child of a
benchmark process that had generated the 1M-row CSV (about 700 MB) reported about 700 MB on either side."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks.harness import hwm_mb


def import_libraries() -> None:
    """The libraries either side's work uses, imported before its timer starts, on both sides alike: the worker's
    activities import pandas and pyarrow when they first run (in a worker that has run one, they are there), and
    left inside the timer they put pandas' import (about 0.3 s) on the TrainEasy side only."""
    import pandas  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def traineasy(csv: Path, folder: Path) -> float:
    from temporalio.testing import ActivityEnvironment

    from core.config import load_settings
    from core.storage import Storage
    from orchestration.contracts import IngestRequest
    from orchestration.data_activities import DataActivities

    storage = Storage(folder)
    staged = storage.upload_dir("bench") / "staged.csv"
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(csv, staged)  # the service's staging of the uploaded bytes, not timed
    settings = load_settings()
    request = IngestRequest("bench", staged.name, csv.name, settings.max_upload_bytes, settings.max_cells)
    import_libraries()
    started = time.perf_counter()
    ActivityEnvironment().run(DataActivities(storage, settings).ingest_dataset, request)
    return time.perf_counter() - started


def pandas(csv: Path, folder: Path) -> float:
    import pandas as pd

    import_libraries()
    started = time.perf_counter()
    pd.read_csv(csv).to_parquet(folder / "plain.parquet")
    return time.perf_counter() - started


if __name__ == "__main__":
    side, csv, folder = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    seconds = {"traineasy": traineasy, "pandas": pandas}[side](csv, folder)
    print(json.dumps({"seconds": seconds, "own_peak_mb": hwm_mb(os.getpid())}))
