"""The training stages as activities: load, split, cross-validate, fit, evaluate and register one model.

Heavy libraries are imported inside the bodies so that the UI can import workflow definitions cheaply.
Every activity is idempotent: files are written atomically under the run's own folder, and the
registry registers a run once. Bad input is refused as a non-retryable error with a plain message.
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio import activity

from core.config import Settings, load_settings
from core.model_record import ModelRecord
from core.registry import Registry
from core.storage import Storage, write_atomic
from orchestration.activity_errors import child_died, fit_refusal, refuse, too_long
from orchestration.contracts import RunFacts, StageHeartbeat, StageResult, TrainInput
from orchestration.heartbeat import heartbeating, keeps_alive
from orchestration.stage_cache import RUNS, file_id

if TYPE_CHECKING:  # heavy: imported in the activities' bodies, so the UI can import the workflows cheaply
    import numpy as np
    from sklearn.pipeline import Pipeline

    from ml.model_spec import ModelSpec
    from ml.training import Prepared

WORKER_ID = f"{os.getpid()}@{socket.gethostname()}"  # which worker process ran a fit
# A killed worker loses at most about this much of a forest's fit (ml.fitting.Growth); a shorter fit is one call.
CHECKPOINT_SECONDS = float(os.environ.get("TRAINEASY_CHECKPOINT_SECONDS", "30"))


class TrainingActivities:
    """One activity per training stage; a run's stages share its folder under the storage root."""

    def __init__(self, storage: Storage, settings: Settings | None = None) -> None:
        self.storage = storage
        self.settings = settings or load_settings()

    # --- helpers -------------------------------------------------------------------------------
    def _run_dir(self, inp: TrainInput) -> Path:
        return self.storage.run_dir(inp.request.owner, inp.run_id)

    def _prepared(self, inp: TrainInput) -> tuple[ModelSpec, Prepared]:
        """The model and the prepared data: from this process's memory when an earlier stage of the run made
        them from the same file here (orchestration.stage_cache), else read and prepared. Read-only: shared."""
        import pandas as pd

        from core.datasets import dataset_path
        from ml.catalog import get_model
        from ml.model_spec import ParamError
        from ml.training import DataError, prepare

        req = inp.request
        path = dataset_path(self.storage, req.owner, req.dataset_id)
        if not path.is_file():
            raise refuse("The dataset no longer exists; upload it again.")

        def read() -> tuple[ModelSpec, Prepared]:
            try:
                spec = get_model(req.model)
                spec.validate(req.params)
                return spec, prepare(pd.read_parquet(path), req.target, spec, req.include_columns)
            except (DataError, ParamError) as exc:
                raise refuse(str(exc)) from None

        return RUNS.fetch(inp.run_id, "prepared", lambda: (file_id(path), repr(req)), read)

    def _split(self, inp: TrainInput) -> dict[str, np.ndarray]:
        import numpy as np

        path = self._run_dir(inp) / "split.npz"

        def read() -> dict[str, np.ndarray]:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}

        return RUNS.fetch(inp.run_id, "split", lambda: file_id(path), read)

    def _keep_model(self, inp: TrainInput, pipeline: Pipeline) -> None:
        """The fitted model written to model.skops (what a stage on another worker, and the registry, read) and
        kept in memory for this run's evaluate and save stages here."""
        from ml.persist import save_model

        path = self._run_dir(inp) / "model.skops"
        save_model(pipeline, path)
        RUNS.keep(inp.run_id, "model", file_id(path), pipeline)

    def _model(self, inp: TrainInput) -> Pipeline:
        from ml.persist import load_model

        path = self._run_dir(inp) / "model.skops"
        return RUNS.fetch(inp.run_id, "model", lambda: file_id(path), lambda: load_model(path))

    # --- activities ----------------------------------------------------------------------------
    @activity.defn
    @keeps_alive
    def load_and_validate(self, inp: TrainInput) -> StageResult:
        from ml.bounds import bound_errors
        from ml.guardrails import fit_estimate, over_budget

        spec, prep = self._prepared(inp)
        # the last line behind the data check and the service: limits the data sets (neighbours vs rows,
        # folds vs class counts...), with the real class counts; refused at once, never retried
        req = inp.request
        classes = prep.y.value_counts().to_dict() if spec.task == "classification" else None
        errors = bound_errors(spec, spec.validate(req.params), len(prep.y), req.test_size, req.cv_folds, classes)
        if errors:
            raise refuse(" ".join(errors))
        # the server side of the data check: a fit estimated beyond the budget never starts
        folds = inp.request.cv_folds
        refusal = over_budget(
            fit_estimate(spec, inp.request.params, prep.X)[0], self.settings.max_fit_minutes, fits=folds + 1 if folds else 1
        )
        if refusal:
            raise refuse(refusal)
        return StageResult(
            activity.info().attempt,
            RunFacts(
                task=spec.task,
                rows=len(prep.y) + prep.dropped_missing_target,
                used_rows=len(prep.y),
                dropped_missing_target=prep.dropped_missing_target,
                features=int(prep.X.shape[1]),
                classes=prep.classes,
                notes=list(prep.notes),
            ),
        )

    @activity.defn
    @keeps_alive
    def preprocess_split(self, inp: TrainInput) -> StageResult:
        import numpy as np

        from ml.training import DataError, Prepared, check_training_classes, folds, split

        spec, prep = self._prepared(inp)
        stratify = spec.task == "classification"
        try:
            train, test = split(prep, inp.request.test_size, inp.request.seed, stratify=stratify)
            if stratify:  # the last line: whatever the checks before said, a class left out is refused here
                check_training_classes(prep, train)
        except DataError as exc:
            raise refuse(str(exc)) from None
        arrays = {"train": train, "test": test}
        if inp.request.cv_folds:
            on_train = Prepared(prep.X.iloc[train], prep.y.iloc[train], 0, prep.classes)
            try:
                fold_rows = folds(on_train, inp.request.cv_folds, inp.request.seed, stratify)
            except DataError as exc:
                raise refuse(str(exc)) from None
            for k, (fit_rows, valid_rows) in enumerate(fold_rows):
                arrays[f"fold{k}_fit"], arrays[f"fold{k}_valid"] = train[fit_rows], train[valid_rows]
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        write_atomic(self._run_dir(inp) / "split.npz", buf.getvalue())
        return StageResult(activity.info().attempt, RunFacts(train_rows=int(len(train)), test_rows=int(len(test))))

    @activity.defn
    def cross_validate(self, inp: TrainInput) -> StageResult:
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
        state = StageHeartbeat(fold=len(done), of=k_total, step=len(done), resumed_from=resumed)
        wall = fit_wall_seconds(self.settings.max_fit_minutes)  # each fold, whatever the estimate said
        with heartbeating(lambda: replace(state)):
            for k in range(len(done), k_total):
                fit_rows, valid_rows = arrays[f"fold{k}_fit"], arrays[f"fold{k}_valid"]
                # one call per fold, in a child process that a cancel (or a failure) kills at once; the child
                # selects the fold's rows, so this process holds no copy of them
                try:
                    predicted = fit_predict_in_child(
                        partial(make_pipeline, spec, inp.request.params, inp.request.seed),  # made from the fold's rows
                        prep.X,
                        prep.y,
                        fit_rows,
                        valid_rows,
                        time_limit=wall,
                    ).value
                except ChildDied as exc:
                    raise child_died(exc) from None
                except FitTooLong:
                    raise too_long(self.settings.max_fit_minutes, f"Cross-validation fold {k + 1} of {k_total}") from None
                except ValueError as exc:  # the data or the settings, not the worker: no retry would help
                    raise fit_refusal(exc, f"Cross-validation fold {k + 1} of {k_total}") from None
                done.append(metrics_for(spec.task, prep.y.iloc[valid_rows], *predicted))
                write_atomic(progress_file, json.dumps(done).encode())
                state.fold = state.step = k + 1
        return StageResult(activity.info().attempt, RunFacts(cv=cv_summary(done), cv_resumed_from=resumed))

    @activity.defn
    def fit_model(self, inp: TrainInput) -> StageResult:
        """Fit on the training rows in one call, in a child process that a cancel kills (a long forest in parts,
        checkpointed for resume); live progress from the estimator's own output; its costs are this fit's alone."""
        from ml.child_fit import ChildDied, FitTooLong, fit_in_child
        from ml.curves import CURVE_SCORE_ROWS
        from ml.fitting import Growth, convergence_note, downsample
        from ml.guardrails import fit_wall_seconds
        from ml.persist import load_model, save_model
        from ml.training import make_pipeline

        spec, prep = self._prepared(inp)
        arrays = self._split(inp)
        run_dir = self._run_dir(inp)
        train = arrays["train"]
        checkpoint = run_dir / "checkpoint.json"
        grows = spec.family == "forest"  # the only models grown in parts (ml.fitting.Growth)
        # only an earlier attempt of this run leaves one: a retry, or the first attempt on the shared queue after
        # the run's own worker died (workflows/training.py), which Temporal counts as a new activity's attempt 1
        saved = json.loads(checkpoint.read_text()) if grows and checkpoint.is_file() else {}
        resumed = int(saved.get("done", 0))

        def save(partial: Pipeline, done: int) -> None:
            # the model file first, under its size's name; the JSON that points at it last, so a kill
            # between the two leaves the previous, consistent checkpoint in force
            name = f"checkpoint-{done}.skops"
            save_model(partial, run_dir / name)
            write_atomic(checkpoint, json.dumps({"done": done, "file": name}).encode())
            for old in run_dir.glob("checkpoint-*.skops"):
                if old.name != name:
                    old.unlink(missing_ok=True)

        growth = Growth(CHECKPOINT_SECONDS, save, load_model(run_dir / saved["file"]) if resumed else None)
        started, cpu0 = time.monotonic(), time.thread_time()
        wall = fit_wall_seconds(self.settings.max_fit_minutes)  # the hard wall, whatever the estimate said
        state = StageHeartbeat(step=resumed, of=1, resumed_from=resumed)
        live: dict[str, Any] = {}  # what the child process reads from the estimator (ml.fitting.live_probe)

        def details() -> StageHeartbeat:
            beat = replace(state, elapsed=round(time.monotonic() - started, 2))
            if live:  # trees, iterations or epochs so far, in place of the single step of one fit call
                beat.step, beat.of, beat.loss = live["step"], live["of"], live.get("loss")
            return beat

        with heartbeating(details):
            try:
                out = fit_in_child(  # the child selects the training rows: this process holds no copy of them
                    partial(make_pipeline, spec, inp.request.params, inp.request.seed),  # made from those rows
                    spec,
                    prep.X,
                    prep.y,
                    rows=train,
                    valid_rows=arrays["test"][:CURVE_SCORE_ROWS],
                    on_live=live.update,
                    growth=growth if grows else None,
                    time_limit=wall,
                )
            except ChildDied as exc:
                raise child_died(exc) from None
            except FitTooLong:
                raise too_long(self.settings.max_fit_minutes) from None
            except ValueError as exc:  # the data or the settings, not the worker: no retry would help
                raise fit_refusal(exc) from None
            if live:  # the last report may predate the last trees
                live["step"] = live["of"]
            state.of = state.step = 1
            self._keep_model(inp, out.value)
        assert out.curve is not None  # a fit always returns its curve (empty for a model without stages)
        curve = {k: downsample(v) if isinstance(v, list) else v for k, v in out.curve.as_dict().items()}
        costs = {  # this fit's alone: the child's own CPU and peak memory, not the worker's lifetime high-water mark
            "fit_seconds": round(time.monotonic() - started, 3),
            "cpu_seconds": round(time.thread_time() - cpu0 + out.cpu_seconds, 3),
            "peak_rss_mb": round(out.peak_rss_mb, 1),
        }
        write_atomic(run_dir / "fit.json", json.dumps(costs).encode())  # for the model card
        return StageResult(
            activity.info().attempt,
            RunFacts(
                fit_seconds=costs["fit_seconds"],
                cpu_seconds=costs["cpu_seconds"],
                peak_rss_mb=costs["peak_rss_mb"],
                resumed_from_step=resumed,
                curve=curve,
                worker=WORKER_ID,
                fit_notes=[note] if (note := convergence_note(spec, out.value, out.convergence)) else None,
            ),
        )

    @activity.defn
    def evaluate_model(self, inp: TrainInput) -> StageResult:
        from ml.evaluation import evaluate, feature_importance

        spec, prep = self._prepared(inp)
        test = self._split(inp)["test"]
        pipeline = self._model(inp)
        X, y = prep.X.iloc[test], prep.y.iloc[test]
        # Permutation importance costs up to features x repeats predictions: heartbeat, so a cancel reaches
        # this thread (between those predictions) and the training slot is free when the run says "cancelled".
        state = StageHeartbeat(step=0, of=2, part="metrics")
        with heartbeating(lambda: replace(state)):
            metrics, charts = evaluate(pipeline, spec.task, X, y)
            state.step, state.part = 1, "feature importance"
            charts["importance"] = feature_importance(pipeline, X, y, inp.request.seed)
        write_atomic(self._run_dir(inp) / "evaluation.json", json.dumps({"metrics": metrics, **charts}).encode())
        return StageResult(activity.info().attempt, RunFacts(metrics=metrics))

    @activity.defn(name="save_model")  # registered before the method was named for what it does; kept for replay
    @keeps_alive
    def register_model(self, inp: TrainInput) -> StageResult:
        """Register a new version in the model registry with its model card (idempotent per run)."""
        run_dir, req = self._run_dir(inp), inp.request
        registry = Registry(self.storage)
        record = registry.by_run(req.owner, inp.run_id)
        if record is None:  # else a retry after registering: its scratch files may be gone already
            record = self._register(inp, registry)
        # the registry holds the model now; the run keeps only its small evaluation.json for the run page
        for scratch in [*run_dir.glob("checkpoint*"), run_dir / "model.skops", run_dir / "split.npz", run_dir / "fit.json"]:
            scratch.unlink(missing_ok=True)
        RUNS.release(inp.run_id)  # the run's last stage: what it kept in this process goes too
        return StageResult(
            activity.info().attempt, RunFacts(model_id=record.id, model_name=record.name, model_version=record.version)
        )

    def _register(self, inp: TrainInput, registry: Registry) -> ModelRecord:
        from core.datasets import load_info
        from ml.model_card import model_card
        from ml.persist import skops_trusted

        spec, prep = self._prepared(inp)
        run_dir, req = self._run_dir(inp), inp.request
        info = load_info(self.storage, req.owner, req.dataset_id)
        saved = run_dir / "model.skops"
        evaluation = json.loads((run_dir / "evaluation.json").read_text())
        card = model_card(
            spec,
            prep,
            run_id=inp.run_id,
            owner=req.owner,
            model=req.model,
            params=req.params,
            seed=req.seed,
            test_size=req.test_size,
            cv_folds=req.cv_folds,
            target=req.target,
            dataset_id=req.dataset_id,
            dataset_name=info.name if info else None,
            dataset_sha256=info.sha256 if info else None,
            metrics=evaluation["metrics"],
            costs=json.loads((run_dir / "fit.json").read_text()),
            skops_trusted=skops_trusted(saved) if saved.is_file() else None,
        )
        return registry.register(req.owner, req.model, inp.run_id, saved, card, dataset_id=req.dataset_id, target=req.target)

    @activity.defn
    def discard_model(self, inp: TrainInput) -> bool:
        """Delete the version this run registered (a cancel came while it was being saved); False if none."""

        registry = Registry(self.storage)
        record = registry.by_run(inp.request.owner, inp.run_id)
        if record is None:
            return False
        registry.delete(inp.request.owner, record.id)
        return True

    @activity.defn
    def discard_scratch(self, inp: TrainInput) -> list[str]:
        """A failed or cancelled run's scratch files (split, checkpoints, model file...) deleted; its
        evaluation.json stays for the run page (orchestration.scratch). Returns the names removed."""
        from orchestration.scratch import clean_run_dir

        return clean_run_dir(self._run_dir(inp))
