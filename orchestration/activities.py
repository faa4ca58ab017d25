"""Activities: the only Temporal code that touches storage, pandas or scikit-learn.

Heavy libraries are imported inside the bodies so that the UI can import workflow definitions cheaply.
Every activity is idempotent: files are written atomically under the run's own folder, and the
registry registers a run once. Bad input is refused as a non-retryable error with a plain message.
"""
from __future__ import annotations

import contextvars
import io
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.config import Settings, load_settings
from core.storage import Storage, write_atomic
from orchestration.contracts import CheckRequest, IngestRequest, PredictRequest, StepResult, TagRequest, TrainInput

INVALID_INPUT = "InvalidInput"   # non-retryable: the user must change something
WORKER_ID = f"{os.getpid()}@{socket.gethostname()}"   # which worker process ran a fit
HEARTBEAT_SECONDS = 1.0
# A killed worker loses at most this much fitting (plus one increment); saving costs time, so not every step.
CHECKPOINT_SECONDS = float(os.environ.get("TRAINEASY_CHECKPOINT_SECONDS", "10"))


def _refuse(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_INPUT, non_retryable=True)


FIT_TOO_LONG = "FitTooLong"      # non-retryable: the fit passed the hard wall of its time budget


def _too_long(max_minutes: float, what: str = "The fit") -> ApplicationError:
    from ml.guardrails import over_wall

    return ApplicationError(over_wall(max_minutes, what), type=FIT_TOO_LONG, non_retryable=True)


def _child_died(exc: Exception) -> ApplicationError:
    """A fit process that died (out of memory, killed): retryable, with a message a user can read."""
    return ApplicationError(str(exc), type="FitProcessDied")


def rss_mb() -> float:
    """Resident memory of this process now (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@contextmanager
def heartbeating(details: Callable[[], dict[str, Any]]) -> Iterator[dict[str, float]]:
    """Heartbeat `details()` every second from a side thread while the body runs in the activity thread.

    A single long fit then still reports progress and keeps the heartbeat timeout alive, and a
    cancellation (raised by the SDK in the activity thread) still lands: between increments, or in the
    short polls with which the activity thread waits for a child-process fit (ml/child_fit.py), which is
    then killed. Also samples peak memory (of this process; a child reports its own).
    """
    stop = threading.Event()
    peak = {"rss_mb": rss_mb()}

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            peak["rss_mb"] = max(peak["rss_mb"], rss_mb())
            activity.heartbeat(details())

    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True)
    activity.heartbeat(details())
    # A cancel landing while the thread starts would be delivered to the new thread (it still carries
    # this thread's id) and kill it before it runs; shield the start so the cancel waits for the body.
    with activity.shield_thread_cancel_exception():
        thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak["rss_mb"] = max(peak["rss_mb"], rss_mb())


class TrainingActivities:
    def __init__(self, storage: Storage, settings: Settings | None = None) -> None:
        self.storage = storage
        self.settings = settings or load_settings()

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

    def _split(self, inp: TrainInput) -> dict[str, Any]:
        import numpy as np

        with np.load(self._run_dir(inp) / "split.npz") as z:
            return {k: z[k] for k in z.files}

    # --- activities ----------------------------------------------------------------------------
    @activity.defn
    def load_and_validate(self, inp: TrainInput) -> StepResult:
        from ml.guardrails import fit_estimate, over_budget

        spec, prep = self._prepared(inp)
        # the server-side side of the pre-launch check: a fit estimated beyond the budget never starts
        folds = inp.request.cv_folds
        refusal = over_budget(fit_estimate(spec, inp.request.params, prep.X)[0], self.settings.max_fit_minutes,
                              fits=folds + 1 if folds else 1)
        if refusal:
            raise _refuse(refusal)
        return StepResult(activity.info().attempt, {
            "task": spec.task, "rows": len(prep.y) + prep.dropped_missing_target, "used_rows": len(prep.y),
            "dropped_missing_target": prep.dropped_missing_target, "features": int(prep.X.shape[1]),
            "classes": prep.classes, "notes": list(prep.notes),
        })

    @activity.defn
    def preprocess_split(self, inp: TrainInput) -> StepResult:
        import numpy as np

        from ml.training import DataError, Prepared, folds, split

        spec, prep = self._prepared(inp)
        stratify = spec.task == "classification"
        try:
            train, test = split(prep, inp.request.test_size, inp.request.seed, stratify=stratify)
        except DataError as exc:
            raise _refuse(str(exc)) from None
        arrays = {"train": train, "test": test}
        if inp.request.cv_folds:
            on_train = Prepared(prep.X.iloc[train], prep.y.iloc[train], 0, prep.classes)
            try:
                fold_rows = folds(on_train, inp.request.cv_folds, inp.request.seed, stratify)
            except DataError as exc:
                raise _refuse(str(exc)) from None
            for k, (fit_rows, valid_rows) in enumerate(fold_rows):
                arrays[f"fold{k}_fit"], arrays[f"fold{k}_valid"] = train[fit_rows], train[valid_rows]
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        write_atomic(self._run_dir(inp) / "split.npz", buf.getvalue())
        return StepResult(activity.info().attempt, {"train_rows": int(len(train)), "test_rows": int(len(test))})

    @activity.defn
    def cross_validate(self, inp: TrainInput) -> StepResult:
        """k-fold on the training rows; each finished fold is saved, so a retry resumes after it."""
        from ml.child_fit import ChildDied, FitTooLong, fit_predict_in_child
        from ml.evaluation import cv_summary, metrics_for
        from ml.guardrails import fit_wall_seconds
        from ml.training import make_pipeline

        spec, prep = self._prepared(inp)
        arrays = self._split(inp)
        k_total = inp.request.cv_folds
        progress_file = self._run_dir(inp) / "cv.json"
        done: list[dict[str, float]] = json.loads(progress_file.read_text()) if progress_file.is_file() else []
        resumed = len(done)
        state = {"fold": len(done), "of": k_total, "step": len(done), "resumed_from": resumed}
        wall = fit_wall_seconds(self.settings.max_fit_minutes)   # each fold, whatever the estimate said
        with heartbeating(lambda: dict(state)):
            for k in range(len(done), k_total):
                fit_rows, valid_rows = arrays[f"fold{k}_fit"], arrays[f"fold{k}_valid"]
                X, y = prep.X.iloc[fit_rows], prep.y.iloc[fit_rows]
                Xv, yv = prep.X.iloc[valid_rows], prep.y.iloc[valid_rows]
                # one call per fold, in a child process that a cancel (or a failure) kills at once
                try:
                    predicted = fit_predict_in_child(make_pipeline(spec, inp.request.params, inp.request.seed, X),
                                                     X, y, Xv, time_limit=wall).value
                except ChildDied as exc:
                    raise _child_died(exc) from None
                except FitTooLong:
                    raise _too_long(self.settings.max_fit_minutes, f"Cross-validation fold {k + 1} of {k_total}") \
                        from None
                done.append(metrics_for(spec.task, yv, *predicted))
                write_atomic(progress_file, json.dumps(done).encode())
                state.update(fold=k + 1, step=k + 1)
        return StepResult(activity.info().attempt, {"cv": cv_summary(done), "cv_resumed_from": resumed})

    @activity.defn
    def fit_model(self, inp: TrainInput) -> StepResult:
        """Fit on the training rows with live progress; ensembles checkpoint each increment for resume."""
        from ml.child_fit import ChildDied, FitTooLong, fit_in_child
        from ml.guardrails import fit_wall_seconds
        from ml.persist import load_model, save_model
        from ml.training import Curve, downsample, fit, live_probe, make_pipeline

        spec, prep = self._prepared(inp)
        arrays = self._split(inp)
        run_dir = self._run_dir(inp)
        train, test = arrays["train"], arrays["test"]
        X, y = prep.X.iloc[train], prep.y.iloc[train]
        pipeline = make_pipeline(spec, inp.request.params, inp.request.seed, X)
        resume = None
        checkpoint = run_dir / "checkpoint.json"
        if activity.info().attempt > 1 and checkpoint.is_file() and spec.increments:
            saved = json.loads(checkpoint.read_text())
            resume = (load_model(run_dir / saved["file"]), saved["done"], Curve(**saved["curve"]))
        started, cpu0 = time.monotonic(), time.thread_time()
        wall = fit_wall_seconds(self.settings.max_fit_minutes)   # the hard wall, whatever the estimate said
        state: dict[str, Any] = {"step": resume[1] if resume else 0, "of": 1, "resumed_from": resume[1] if resume else 0}
        live: dict[str, Any] = {}      # what the child process reads from the estimator (an MLP's loss)
        child = {"cpu_seconds": 0.0, "peak_rss_mb": 0.0}

        def details() -> dict[str, Any]:
            return {**state, **live, "elapsed": round(time.monotonic() - started, 2)}

        def in_child(pipe, X, y):
            """A single-call fit (no increments to stop between) runs in a child process that a cancel kills."""
            try:
                out = fit_in_child(pipe, X, y, on_live=live.update, time_limit=wall)
            except ChildDied as exc:
                raise _child_died(exc) from None
            except FitTooLong:
                raise _too_long(self.settings.max_fit_minutes) from None
            child.update(cpu_seconds=out.cpu_seconds, peak_rss_mb=out.peak_rss_mb)
            return out.value

        last_checkpoint = [time.monotonic()]

        def on_step(done: int, total: int, curve: Curve) -> None:
            state.update(step=done, of=total, curve=curve.as_dict())
            if wall and done < total and time.monotonic() - started > wall:
                raise _too_long(self.settings.max_fit_minutes)   # an incremental fit stops between increments
            if spec.increments and done < total and time.monotonic() - last_checkpoint[0] >= CHECKPOINT_SECONDS:
                # the model file first, under its step's name; the JSON that points at it last, so a
                # kill between the two leaves the previous, consistent checkpoint in force
                name = f"checkpoint-{done}.skops"
                save_model(pipeline, run_dir / name)
                write_atomic(checkpoint, json.dumps({"done": done, "file": name, "curve": curve.as_dict()}).encode())
                for old in run_dir.glob("checkpoint-*.skops"):
                    if old.name != name:
                        old.unlink(missing_ok=True)
                last_checkpoint[0] = time.monotonic()

        with heartbeating(details) as peak:
            pipeline, curve = fit(pipeline, spec, X, y, valid=(prep.X.iloc[test], prep.y.iloc[test]),
                                  on_step=on_step, resume=resume, single_fit=in_child)
        save_model(pipeline, run_dir / "model.skops", remember=True)
        losses = live_probe(pipeline).get("loss", [])
        curve_data = curve.as_dict() if curve.steps else {
            "metric": "training loss", "steps": list(range(1, len(losses) + 1)), "train": losses, "valid": []}
        curve_data = {k: downsample(v) if isinstance(v, list) else v for k, v in curve_data.items()}
        costs = {"fit_seconds": round(time.monotonic() - started, 3),
                 "cpu_seconds": round(time.thread_time() - cpu0 + child["cpu_seconds"], 3),
                 "peak_rss_mb": round(max(peak["rss_mb"], child["peak_rss_mb"]), 1)}
        write_atomic(run_dir / "fit.json", json.dumps(costs).encode())   # for the model card
        return StepResult(activity.info().attempt, {**costs, "resumed_from_step": resume[1] if resume else 0,
                                                    "curve": curve_data, "worker": WORKER_ID})

    @activity.defn
    def evaluate_model(self, inp: TrainInput) -> StepResult:
        from ml.evaluation import evaluate, feature_importance
        from ml.persist import load_model

        spec, prep = self._prepared(inp)
        test = self._split(inp)["test"]
        pipeline = load_model(self._run_dir(inp) / "model.skops")
        X, y = prep.X.iloc[test], prep.y.iloc[test]
        # Permutation importance costs up to features x repeats predictions: heartbeat, so a cancel reaches
        # this thread (between those predictions) and the training slot is free when the run says "cancelled".
        state = {"step": 0, "of": 2, "part": "metrics"}
        with heartbeating(lambda: dict(state)):
            metrics, charts = evaluate(pipeline, spec.task, X, y)
            state.update(step=1, part="feature importance")
            charts["importance"] = feature_importance(pipeline, X, y, inp.request.seed)
        write_atomic(self._run_dir(inp) / "evaluation.json", json.dumps({"metrics": metrics, **charts}).encode())
        return StepResult(activity.info().attempt, {"metrics": metrics})

    @activity.defn
    def save_model(self, inp: TrainInput) -> StepResult:
        """Register a new version in the model registry with its model card (idempotent per run)."""
        import platform

        import numpy
        import pandas
        import sklearn
        import skops

        from core.datasets import load_info
        from core.registry import Registry

        spec, prep = self._prepared(inp)
        run_dir, req = self._run_dir(inp), inp.request
        info = load_info(self.storage, req.owner, req.dataset_id)
        evaluation = json.loads((run_dir / "evaluation.json").read_text())
        card = {
            "run_id": inp.run_id, "owner": req.owner, "model": req.model, "model_label": spec.label,
            "task": spec.task, "params": req.params, "seed": req.seed, "test_size": req.test_size,
            "cv_folds": req.cv_folds, "target": req.target,
            "classes": [str(c) for c in sorted(prep.y.unique(), key=str)] if spec.task == "classification" else [],
            "dataset": {"id": req.dataset_id, "name": info.name if info else None,
                        "sha256": info.sha256 if info else None, "rows": len(prep.y)},
            "input_schema": input_schema(prep.X),
            "metrics": evaluation["metrics"],
            "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                         "pandas": pandas.__version__, "numpy": numpy.__version__, "skops": skops.__version__},
        }
        card.update(json.loads((run_dir / "fit.json").read_text()))
        record = Registry(self.storage).register(req.owner, req.model, inp.run_id, run_dir / "model.skops", card)
        # the registry holds the model now; the run keeps only its small evaluation.json for the run page
        for scratch in [*run_dir.glob("checkpoint*"), run_dir / "model.skops", run_dir / "split.npz"]:
            scratch.unlink(missing_ok=True)
        return StepResult(activity.info().attempt,
                          {"model_id": record.id, "model_name": record.name, "model_version": record.version})


def input_schema(X) -> list[dict[str, Any]]:
    """The raw columns a model expects, with the categories it saw (for unseen-category reports)."""
    import pandas as pd

    schema = []
    for c in X.columns:
        numeric = pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
        entry: dict[str, Any] = {"name": str(c), "kind": "numeric" if numeric else "categorical",
                                 "dtype": str(X[c].dtype)}
        if not numeric:
            entry["categories"] = sorted(map(str, X[c].dropna().unique()))[:1000]
        schema.append(entry)
    return schema


class DataActivities:
    """Short data tasks on the I/O queue: ingest an upload, check a dataset before training, predict."""

    def __init__(self, storage: Storage, settings: Settings | None = None) -> None:
        self.storage = storage
        self.settings = settings or load_settings()

    def _staged(self, owner: str, name: str) -> Path:
        from core.names import display_name

        staged = self.storage.upload_dir(owner) / display_name(name)
        if not staged.is_file():
            raise _refuse("The upload was not found; please upload the file again.")
        return staged

    @activity.defn
    def ingest_dataset(self, req: IngestRequest) -> dict:
        from core.datasets import DatasetError, ingest_csv

        staged = self._staged(req.owner, req.upload_file)
        try:
            info = ingest_csv(self.storage, req.owner, staged.read_bytes(), req.filename, req.max_bytes,
                              max_columns=req.max_columns or self.settings.max_columns,
                              max_cells=req.max_cells or self.settings.max_cells)
        except DatasetError as exc:
            staged.unlink(missing_ok=True)
            raise _refuse(str(exc)) from None
        # other errors keep the staged file for Temporal's retry; the service removes it in the end
        staged.unlink(missing_ok=True)
        return {"dataset_id": info.dataset_id, "name": info.name, "rows": info.rows, "columns": len(info.columns)}

    @activity.defn
    def check_dataset(self, req: CheckRequest) -> dict:
        import pandas as pd

        from core.datasets import dataset_path
        from ml.catalog import ParamError, get_model
        from ml.guardrails import check_data

        path = dataset_path(self.storage, req.owner, req.dataset_id)
        if not path.is_file():
            raise _refuse("The dataset no longer exists; upload it again.")
        try:
            spec = get_model(req.model)
            return check_data(pd.read_parquet(path), req.target, spec, req.params, req.cv_folds,
                              max_fit_minutes=self.settings.max_fit_minutes).as_dict()
        except (ParamError, ValueError) as exc:
            raise _refuse(f"The data cannot be checked: {exc}") from None

    @activity.defn
    def tag_model(self, req: TagRequest) -> bool:
        from core.registry import Registry

        return Registry(self.storage).add_tag(req.owner, req.run_id, req.tag) is not None

    @activity.defn
    def predict(self, req: PredictRequest) -> dict:
        """Predictions for an uploaded CSV, written to the owner's predictions folder. The input is parsed
        with the upload caps (columns, cells), and the file is refused before it is written when it would
        pass the cell limit (rows x output columns) or the storage the owner has left (`max_output_bytes`):
        a classifier adds one probability column per class, so the output can dwarf the input."""
        from core.datasets import DatasetError, decode_csv_text, parse_csv
        from core.registry import Registry
        from ml.persist import load_model

        registry = Registry(self.storage)
        record = registry.get(req.owner, req.model_id)
        staged = self._staged(req.owner, req.upload_file)
        if record is None:
            raise _refuse("That model no longer exists.")
        max_cells = req.max_cells or self.settings.max_cells
        max_output = req.max_output_bytes or self.settings.max_stored_mb * 2**20
        try:
            df = parse_csv(decode_csv_text(staged.read_bytes(), req.max_bytes), min_columns=1,
                           max_columns=req.max_columns or self.settings.max_columns, max_cells=max_cells)
        except DatasetError as exc:
            staged.unlink(missing_ok=True)
            raise _refuse(str(exc)) from None
        X, notes = conform(df, record.card["input_schema"])
        pipeline = load_model(registry.model_file(record))
        classes = list(getattr(pipeline[-1], "classes_", [])) if hasattr(pipeline[-1], "predict_proba") else []
        columns = df.shape[1] + 1 + len(classes)
        if len(df) * columns > max_cells:   # checked before predicting: the probabilities alone are rows x classes
            staged.unlink(missing_ok=True)
            raise _refuse(f"The predictions would have {len(df):,} rows x {columns:,} columns (the file's "
                          f"{df.shape[1]:,}, the prediction and {len(classes):,} class probabilities) = "
                          f"{len(df) * columns:,} cells; the limit is {max_cells:,} cells. "
                          "Predict on fewer rows or columns.")
        out = df.copy()
        out["prediction"] = pipeline.predict(X)
        if classes:
            for label, column in zip(pipeline[-1].classes_, pipeline.predict_proba(X).T):
                out[f"probability_{label}"] = column.round(6)
        name = f"{secrets.token_hex(8)}.csv"
        data = _bounded_csv(out, max_output, staged)
        write_atomic(self.storage.user_dir(req.owner) / "predictions" / name, data)
        staged.unlink(missing_ok=True)
        # no preview rows here: results travel in the workflow history; the service reads them from the file
        return {"rows": len(out), "notes": notes, "file": name, "model": record.label}


ESTIMATE_ROWS = 1000   # rows rendered to estimate the size of a predictions file before building it


def _too_big(size: int, limit: int, about: bool) -> ApplicationError:
    return _refuse(f"The predictions file would be {'about ' if about else ''}{_size(size)}, but only "
                   f"{_size(limit)} of your storage quota is left. Predict on fewer rows, or delete "
                   "datasets, models or predictions to make room.")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB"


def _bounded_csv(out, limit: int, staged: Path) -> bytes:
    """The formula-safe CSV of `out`, or a refusal when it would exceed `limit` bytes: estimated from the
    first rows before the whole text is built, then checked exactly before anything is written."""
    from core.csvsafe import frame_to_csv

    n = len(out)
    if n > ESTIMATE_ROWS:
        sample = len(frame_to_csv(out.iloc[:ESTIMATE_ROWS]))
        estimate = int(sample * n / ESTIMATE_ROWS)
        if estimate > limit:
            staged.unlink(missing_ok=True)
            raise _too_big(estimate, limit, about=True)
    data = frame_to_csv(out)
    if len(data) > limit:
        staged.unlink(missing_ok=True)
        raise _too_big(len(data), limit, about=False)
    return data


def conform(df, schema: list[dict[str, Any]]):
    """The upload's columns checked against the training schema: (features, notes) or a refusal."""
    import pandas as pd

    names = [c["name"] for c in schema]
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise _refuse(f"The file lacks column(s) the model needs: {', '.join(missing[:10])}"
                      f"{' …' if len(missing) > 10 else ''}.")
    notes = []
    extra = [c for c in df.columns if c not in names]
    if extra:
        notes.append(f"Ignored column(s) the model does not use: {', '.join(map(str, extra[:10]))}.")
    X = df[names].copy()
    for col in schema:
        name = col["name"]
        if col["kind"] == "numeric" and not pd.api.types.is_numeric_dtype(X[name]):
            converted = pd.to_numeric(X[name], errors="coerce")
            bad = int((converted.isna() & X[name].notna()).sum())
            if bad:
                notes.append(f"{name!r}: {bad} non-numeric value(s) treated as missing.")
            X[name] = converted
        elif col["kind"] == "categorical":
            unseen = sorted(set(X[name].dropna().astype(str)) - set(col.get("categories", [])))
            if unseen and len(col.get("categories", [])) < 1000:
                shown = ", ".join(map(repr, unseen[:5]))
                notes.append(f"{name!r}: {len(unseen)} value(s) never seen in training ({shown}"
                             f"{' …' if len(unseen) > 5 else ''}); treated as unknown.")
    return X, notes


def activity_list(storage: Storage, settings: Settings | None = None) -> tuple[list, list]:
    """(training activities, data activities) bound to one storage root and the worker's settings."""
    t, d = TrainingActivities(storage, settings), DataActivities(storage, settings)
    return ([t.load_and_validate, t.preprocess_split, t.cross_validate, t.fit_model, t.evaluate_model, t.save_model],
            [d.ingest_dataset, d.check_dataset, d.predict, d.tag_model])
