"""The baseline of the 1M-row figure: what a data scientist writes with pandas and scikit-learn alone (read_csv,
split, fit once, evaluate: metrics and the same permutation importance a run computes). Run in a fresh process by
the benchmark: `python -m benchmarks.plain_script CSV`; prints its seconds (after the imports) and its own peak memory as JSON."""

from __future__ import annotations

import json
import os
import sys
import time

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from benchmarks.harness import hwm_mb

TARGET = "label"  # as benchmarks.data writes it
PARAMS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "l2_regularization": 0.0, "early_stopping": False}


def main(path: str) -> dict[str, float]:
    started = time.perf_counter()
    df = pd.read_csv(path)
    X, y = df.drop(columns=[TARGET]), df[TARGET]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    model = HistGradientBoostingClassifier(**PARAMS, random_state=42).fit(X_train, y_train)
    proba = model.predict_proba(X_test)[:, 1]
    accuracy = balanced_accuracy_score(y_test, model.predict(X_test))
    auc = roc_auc_score(y_test == model.classes_[1], proba)
    permutation_importance(model, X_test.iloc[:1000], y_test.iloc[:1000], n_repeats=3, random_state=42, n_jobs=1)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "balanced_accuracy": accuracy, "auc": auc, "own_peak_mb": hwm_mb(os.getpid())}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
