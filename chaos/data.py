"""Small CSVs made here for the scenarios (like tests/helpers.py builds them): quick fits, and one slow enough to kill."""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "bought"
QUICK_MODEL = "logistic_regression"  # fits 200 rows in well under a second
SLOW_MODEL = "random_forest_classifier"  # incremental (checkpointed, heartbeating per tree); ~40 ms a tree on wide_csv()


def small_csv(rows: int = 200, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(50, 15, rows).round(2),
            "city": rng.choice(["paris", "lyon", "nice"], rows),
        }
    )
    df[TARGET] = np.where(df.income + 10 * (df.city == "paris") + rng.normal(0, 5, rows) > 55, "yes", "no")
    return df.to_csv(index=False).encode()


def wide_csv(rows: int = 20_000, features: int = 10, seed: int = 0) -> bytes:
    """Enough rows and columns that a forest's trees take tens of milliseconds each (about 1.5 MB)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, features)).round(4), columns=[f"f{i}" for i in range(features)])
    df[TARGET] = np.where(df.sum(axis=1) + rng.normal(size=rows) > 0, "yes", "no")
    return df.to_csv(index=False).encode()
