"""Ingest figure: the 1M-row CSV through TrainEasy's ingest (the worker's activity) against read_csv + to_parquet,
each side in a fresh process: wall time and that process's peak resident memory (its own VmHWM: see ingest_child)."""

from __future__ import annotations

import tempfile

from benchmarks.data import write_csv
from benchmarks.harness import Figure, Series, interleaved, ratio_figure, run_child
from benchmarks.sizes import Sizes


async def ingest_figure(sizes: Sizes) -> list[Figure]:
    csv = write_csv(sizes.folder, sizes.big_rows, 20)
    peaks: dict[str, list[float]] = {"traineasy": [], "pandas": []}

    def side(name: str) -> float:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
            result = run_child("benchmarks.ingest_child", name, str(csv), folder)
        peaks[name].append(result["own_peak_mb"])
        return float(result["seconds"])

    ours, base = await interleaved(
        [lambda: side("traineasy"), lambda: side("pandas")], sizes.ingest_repeats, "ingest (s): TrainEasy, pandas"
    )
    mb = csv.stat().st_size / 2**20
    ours_mb, base_mb = Series(peaks["traineasy"]), Series(peaks["pandas"])
    return [
        ratio_figure(
            "ingest of the CSV vs read_csv + to_parquet: time", "s", ours, base, 1.3, f"{mb:.0f} MB CSV, {sizes.big_rows} rows"
        ),
        ratio_figure(
            "ingest of the CSV vs read_csv + to_parquet: peak memory", "MB", ours_mb, base_mb, 1.2, "each side a fresh process"
        ),
    ]
