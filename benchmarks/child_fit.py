"""What fitting in a child process (ml/child_fit.py) costs a tiny fit: in-process vs forked child (an extra figure,
no target in the issue). Run in a fresh process by the benchmark (`python -m benchmarks.child_fit`), so that its
fork server ends with it; prints medians for the bare fit (logistic regression on 200 rows) and for the whole
fit_model activity (which also loads the dataset, writes the model and its costs), the last line as JSON. The fork
server is started (and warmed) before timing, as a worker does at start-up.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import Figure, Series, run_child

REPEATS = 25


def median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    import pandas as pd
    from temporalio.testing import ActivityEnvironment

    import ml.fitting as fitting
    import ml.training as training
    from core.datasets import ingest_csv
    from core.names import new_run_id
    from core.storage import Storage
    from ml import child_fit
    from ml.catalog import get_model
    from orchestration.contracts import TrainInput, TrainRequest
    from orchestration.training_activities import TrainingActivities
    from tests.helpers import classification_csv

    child_fit.start()
    spec = get_model("logistic_regression")
    prep = training.prepare(pd.read_csv(io.BytesIO(classification_csv(rows=200))), "bought", spec)
    child_fit.fit_in_child(training.make_pipeline(spec, {}, 0, prep.X), spec, prep.X, prep.y)  # waits for the server

    def plain() -> None:
        training.make_pipeline(spec, {}, 0, prep.X).fit(prep.X, prep.y)

    def child() -> None:
        child_fit.fit_in_child(training.make_pipeline(spec, {}, 0, prep.X), spec, prep.X, prep.y)

    with tempfile.TemporaryDirectory() as home:
        storage = Storage(Path(home))
        info = ingest_csv(storage, "bench", classification_csv(rows=200), "tiny.csv", 2**30)
        inp = TrainInput(new_run_id("train", "bench"), TrainRequest("bench", info.dataset_id, "bought", spec.key))
        acts, env = TrainingActivities(storage), ActivityEnvironment()
        env.run(acts.preprocess_split, inp)

        def activity() -> None:
            env.run(acts.fit_model, inp)

        real_child = child_fit.fit_in_child

        def in_process(  # type: ignore[no-untyped-def]
            make,
            spec,
            X,
            y,
            *,
            rows=None,
            valid_rows=None,
            on_live=None,
            growth=None,
            time_limit=None,
            on_fitted=None,
            store=None,
        ):
            X_fit, y_fit = X.iloc[rows], y.iloc[rows]
            held = (X.iloc[valid_rows], y.iloc[valid_rows])
            fitted, curve = fitting.fit(make(X_fit), spec, X_fit, y_fit, valid=held, growth=growth, fitted=store)
            return child_fit.ChildResult(fitted, 0.0, 0.0, curve=curve)

        def activity_in_process() -> None:
            child_fit.fit_in_child = in_process  # the old, in-process path
            try:
                env.run(acts.fit_model, inp)
            finally:
                child_fit.fit_in_child = real_child

        rows = [
            ("bare fit", median_ms(plain), median_ms(child)),
            ("fit_model activity", median_ms(activity_in_process), median_ms(activity)),
        ]
    print(f"{'tiny logistic regression, 200 rows':36} {'in-process':>11} {'child':>9} {'ratio':>7} {'added':>9}")
    for name, a, b in rows:
        print(f"{name:36} {a:9.1f}ms {b:7.1f}ms {b / a:6.2f}x {b - a:7.1f}ms")
    print(json.dumps({name: [a, b] for name, a, b in rows}))


async def child_fit_figure() -> list[Figure]:
    result = run_child("benchmarks.child_fit")
    in_process, child = result["fit_model activity"]
    note = "tiny logistic regression; bare fit {:.1f} ms in process, {:.1f} ms in a child".format(*result["bare fit"])
    return [
        Figure(
            "extra: fit_model activity, child-process fit vs in process",
            "ms",
            child,
            in_process,
            Series([child / in_process]),
            "—",
            None,
            note,
        )
    ]


if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as a worker's fit child
        os.environ.setdefault(_var, "1")
    main()
