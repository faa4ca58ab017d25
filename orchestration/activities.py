"""Activities: the only Temporal code that touches storage, pandas or scikit-learn.

Heavy libraries are imported inside the bodies so that the UI can import workflow definitions cheaply.
Every activity is idempotent: files are written atomically under the run's own folder.
"""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.storage import Storage, write_atomic
from orchestration.contracts import IngestRequest, StepResult, TrainInput

INVALID_INPUT = "InvalidInput"   # non-retryable: the user must change something


def _refuse(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_INPUT, non_retryable=True)


class TrainingActivities:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # --- helpers -------------------------------------------------------------------------------
    def _run_dir(self, inp: TrainInput) -> Path:
        return self.storage.run_dir(inp.request.owner, inp.run_id)

    def _prepared(self, inp: TrainInput):
        import pandas as pd

        from core.datasets import dataset_path
        from ml.catalog import ParamError, get_model
        from ml.training import DataError, prepare

        req = inp.request
        path = dataset_path(self.storage, req.owner, req.dataset_id)
        if not path.is_file():
            raise _refuse("The dataset no longer exists; upload it again.")
        try:
            spec = get_model(req.model)
            spec.validate(req.params)
            return spec, prepare(pd.read_parquet(path), req.target, spec)
        except (DataError, ParamError) as exc:
            raise _refuse(str(exc)) from None

    def _split(self, inp: TrainInput):
        import numpy as np

        with np.load(self._run_dir(inp) / "split.npz") as z:
            return z["train"], z["test"]

    # --- activities ----------------------------------------------------------------------------
    @activity.defn
    def load_and_validate(self, inp: TrainInput) -> StepResult:
        spec, prep = self._prepared(inp)
        return StepResult(activity.info().attempt, {
            "task": spec.task, "rows": len(prep.y) + prep.dropped_missing_target, "used_rows": len(prep.y),
            "dropped_missing_target": prep.dropped_missing_target, "features": int(prep.X.shape[1]),
            "classes": prep.classes,
        })

    @activity.defn
    def preprocess_split(self, inp: TrainInput) -> StepResult:
        import io

        import numpy as np

        from ml.training import split

        spec, prep = self._prepared(inp)
        train, test = split(prep, inp.request.test_size, inp.request.seed, stratify=spec.task == "classification")
        buf = io.BytesIO()
        np.savez(buf, train=train, test=test)
        write_atomic(self._run_dir(inp) / "split.npz", buf.getvalue())
        return StepResult(activity.info().attempt, {"train_rows": int(len(train)), "test_rows": int(len(test))})

    @activity.defn
    def fit_model(self, inp: TrainInput) -> StepResult:
        from ml.persist import save_model
        from ml.training import fit, make_pipeline

        spec, prep = self._prepared(inp)
        train, _ = self._split(inp)
        X, y = prep.X.iloc[train], prep.y.iloc[train]
        started, cpu0 = time.monotonic(), time.process_time()
        activity.heartbeat({"step": 0, "of": 1})

        def report(done: int, total: int) -> None:
            # heartbeats carry progress to the UI and bring cancellation into this thread
            activity.heartbeat({"step": done, "of": total, "elapsed": round(time.monotonic() - started, 2)})

        pipeline = fit(make_pipeline(spec, inp.request.params, inp.request.seed, X), spec, X, y, report)
        save_model(pipeline, self._run_dir(inp) / "model.skops")
        return StepResult(activity.info().attempt, {
            "fit_seconds": round(time.monotonic() - started, 3),
            "cpu_seconds": round(time.process_time() - cpu0, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        })

    @activity.defn
    def evaluate_model(self, inp: TrainInput) -> StepResult:
        from ml.persist import load_model
        from ml.training import evaluate

        spec, prep = self._prepared(inp)
        _, test = self._split(inp)
        pipeline = load_model(self._run_dir(inp) / "model.skops")
        metrics = evaluate(pipeline, spec.task, prep.X.iloc[test], prep.y.iloc[test])
        write_atomic(self._run_dir(inp) / "metrics.json", json.dumps(metrics).encode())
        return StepResult(activity.info().attempt, {"metrics": metrics})

    @activity.defn
    def save_model(self, inp: TrainInput) -> StepResult:
        import shutil

        import sklearn

        from core.datasets import load_info

        run_dir = self._run_dir(inp)
        req = inp.request
        info = load_info(self.storage, req.owner, req.dataset_id)
        card = {
            "run_id": inp.run_id, "owner": req.owner, "model": req.model, "params": req.params,
            "seed": req.seed, "test_size": req.test_size, "target": req.target,
            "dataset_id": req.dataset_id, "dataset_sha256": info.sha256 if info else None,
            "features": [c for c in (info.column_names if info else []) if c != req.target],
            "metrics": json.loads((run_dir / "metrics.json").read_text()),
            "sklearn_version": sklearn.__version__,
        }
        target = self.storage.user_dir(req.owner) / "models" / inp.run_id
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "model.skops", target / "model.skops")
        (target / "card.json").write_text(json.dumps(card, indent=2))
        return StepResult(activity.info().attempt, {"model_path": str(target / "model.skops")})


class IngestActivities:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @activity.defn
    def ingest_dataset(self, req: IngestRequest) -> dict:
        from core.datasets import DatasetError, ingest_csv
        from core.names import display_name

        staged = self.storage.upload_dir(req.owner) / display_name(req.upload_file)
        if not staged.is_file():
            raise _refuse("The upload was not found; please upload the file again.")
        try:
            info = ingest_csv(self.storage, req.owner, staged.read_bytes(), req.filename, req.max_bytes)
        except DatasetError as exc:
            staged.unlink(missing_ok=True)
            raise _refuse(str(exc)) from None
        staged.unlink(missing_ok=True)
        return {"dataset_id": info.dataset_id, "name": info.name, "rows": info.rows, "columns": len(info.columns)}


def activity_list(storage: Storage) -> tuple[list, list]:
    """(training activities, ingestion activities) bound to one storage root."""
    t, i = TrainingActivities(storage), IngestActivities(storage)
    return ([t.load_and_validate, t.preprocess_split, t.fit_model, t.evaluate_model, t.save_model],
            [i.ingest_dataset])

