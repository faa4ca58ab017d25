"""Data made at run time (nothing downloaded or committed): classification CSVs of a given size, written to a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

TARGET = "label"


def classification_frame(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    """Numeric features (4 decimals: 1M rows x 20 columns is ~144 MB of CSV) and a yes/no label."""
    X, y = make_classification(rows, features, n_informative=min(8, features - 2), random_state=seed)
    df = pd.DataFrame(X.round(4), columns=[f"f{i}" for i in range(features)])
    df[TARGET] = np.where(y == 1, "yes", "no")
    return df


def write_csv(folder: Path, rows: int, features: int, seed: int = 0) -> Path:
    path = folder / f"bench-{rows}x{features}-{seed}.csv"
    if not path.exists():
        classification_frame(rows, features, seed).to_csv(path, index=False)
    return path
