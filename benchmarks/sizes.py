"""How big each figure's work is, and how often it is repeated: the issue's sizes, or `--quick` ones that let the
harness itself be tested in a minute or two (their ratios mean little)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Sizes:
    folder: Path  # where the generated CSVs go (a temp folder)
    batch_rows: int = 12_000
    batch_trees: int = 80
    batch_jobs: int = 8
    batch_repeats: int = 2
    tiny_repeats: int = 41  # a run of ~0.3 s whose single repeats vary by ±30% here: many, for a steady median
    forest_rows: int = 40_000  # about 10 s for one fit of the forest below on this 2-core machine
    forest_trees: int = 100
    forest_repeats: int = 7  # one fit of the same forest varies by ±5% from run to run here, more than the target
    big_rows: int = 1_000_000  # x 20 columns: ~144 MB of CSV
    big_repeats: int = 3  # the plain script alone varies by ~30% from one repeat to the next on this machine
    ingest_repeats: int = 15  # one pair's ratio varies from 1.0 to 1.35 here, and a median of 9 by ±0.07: 15 of ~3 s


def quick(folder: Path) -> Sizes:
    return Sizes(
        folder,
        batch_rows=1_000,
        batch_trees=5,
        batch_jobs=2,
        batch_repeats=1,
        tiny_repeats=1,
        forest_rows=2_000,
        forest_trees=10,
        forest_repeats=1,
        big_rows=5_000,
        big_repeats=1,
        ingest_repeats=1,
    )
