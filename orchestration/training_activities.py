"""The training stages as activities: load, split, cross-validate, fit, evaluate and register one model.

Heavy libraries are imported inside the bodies so that the UI can import workflow definitions cheaply.
Every activity is idempotent: files are written atomically under the run's own folder, and the
registry registers a run once. Bad input is refused as a non-retryable error with a plain message.
The run's shared data is `orchestration/run_data.py`; the longer stage bodies are `cv_stage.py` and
`fit_stage.py`, called from the thin registered methods here.
"""

from __future__ import annotations

import io
import json
from functools import cached_property

from temporalio import activity

from core.config import Settings, load_settings
from core.model_record import ModelRecord
from core.registry import Registry
from core.storage import Storage, write_atomic
from orchestration.activity_errors import refuse
from orchestration.contracts import RunFacts, StageHeartbeat, StageResult, TrainInput
from orchestration.cv_stage import cv_stage
from orchestration.fit_stage import fit_stage
from orchestration.heartbeat import heartbeating, keeps_alive
from orchestration.run_data import RunData
from orchestration.scratch import clean_run_dir


class TrainingActivities:
    """One activity per training stage; a run's stages share its folder under the storage root."""

    def __init__(self, storage: Storage, settings: Settings | None = None) -> None:
        self.storage = storage
        self.settings = settings or load_settings()
        self.data = RunData(storage)

    @cached_property
    def registry(self) -> Registry:
        """One per worker process: its schema and migrations are checked once, not on every run's save."""
        return Registry(self.storage)

    @activity.defn
    @keeps_alive
    def load_and_validate(self, inp: TrainInput) -> StageResult:
        from ml.bounds import bound_errors
        from ml.guardrails import fit_estimate, over_budget

        spec, prep = self.data.prepared(inp)
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
            fit_estimate(spec, inp.request.params, prep.X, test_size=req.test_size)[0],
            self.settings.max_fit_minutes,
            fits=folds + 1 if folds else 1,
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

        spec, prep = self.data.prepared(inp)
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
        write_atomic(self.data.run_dir(inp) / "split.npz", buf.getvalue())
        return StageResult(activity.info().attempt, RunFacts(train_rows=int(len(train)), test_rows=int(len(test))))

    @activity.defn
    def cross_validate(self, inp: TrainInput) -> StageResult:
        """k-fold on the training rows; each finished fold is saved, so a retry resumes after it (cv_stage.py)."""
        return cv_stage(self.data, self.settings, inp)

    @activity.defn
    def fit_model(self, inp: TrainInput) -> StageResult:
        """Fit on the training rows in one call in a killable child, a long forest checkpointed (fit_stage.py)."""
        return fit_stage(self.data, self.settings, inp)

    @activity.defn
    def evaluate_model(self, inp: TrainInput) -> StageResult:
        from ml.evaluation import evaluate, feature_importance

        spec, prep = self.data.prepared(inp)
        test = self.data.split(inp)["test"]
        pipeline = self.data.model(inp)
        X, y = prep.X.iloc[test], prep.y.iloc[test]
        # Permutation importance costs up to features x repeats predictions: heartbeat, so a cancel reaches
        # this thread (between those predictions) and the training slot is free when the run says "cancelled".
        # one object swapped for the next, never changed in place: the heartbeat thread reads a whole state
        now = [StageHeartbeat(step=0, of=2, part="metrics")]
        with heartbeating(lambda: now[0]):
            metrics, charts = evaluate(pipeline, spec.task, X, y)
            now[0] = StageHeartbeat(step=1, of=2, part="feature importance")
            charts["importance"] = feature_importance(pipeline, X, y, inp.request.seed)
        write_atomic(self.data.run_dir(inp) / "evaluation.json", json.dumps({"metrics": metrics, **charts}).encode())
        return StageResult(activity.info().attempt, RunFacts(metrics=metrics))

    @activity.defn(name="save_model")  # registered before the method was named for what it does; kept for replay
    @keeps_alive
    def register_model(self, inp: TrainInput) -> StageResult:
        """Register a new version in the model registry with its model card (idempotent per run)."""
        run_dir, req = self.data.run_dir(inp), inp.request
        registry = self.registry
        record = registry.by_run(req.owner, inp.run_id)
        if record is None:  # else a retry after registering: its scratch files may be gone already
            record = self._register(inp, registry)
        # the registry holds the model now; the run keeps only its small evaluation.json for the run page. All the
        # rest goes, not a list of names: a fit child killed while it stored the model leaves its temporary file
        # (model.skops.<pid>.<thread>.tmp), which its retry does not reuse
        clean_run_dir(run_dir)
        self.data.release(inp.run_id)  # the run's last stage: what it kept in this process goes too
        return StageResult(
            activity.info().attempt, RunFacts(model_id=record.id, model_name=record.name, model_version=record.version)
        )

    def _register(self, inp: TrainInput, registry: Registry) -> ModelRecord:
        from core.datasets import load_info
        from ml.model_card import model_card

        spec, prep = self.data.prepared(inp)
        run_dir, req = self.data.run_dir(inp), inp.request
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
            skops_trusted=self.data.skops_trusted(inp) if saved.is_file() else None,
        )
        return registry.register(req.owner, req.model, inp.run_id, saved, card, dataset_id=req.dataset_id, target=req.target)

    @activity.defn
    def discard_model(self, inp: TrainInput) -> bool:
        """Delete the version this run registered (a cancel came while it was being saved); False if none."""

        registry = self.registry
        record = registry.by_run(inp.request.owner, inp.run_id)
        if record is None:
            return False
        registry.delete(inp.request.owner, record.id)
        return True

    @activity.defn
    def discard_scratch(self, inp: TrainInput) -> list[str]:
        """A failed or cancelled run's scratch files (split, checkpoints, model file...) deleted; its
        evaluation.json stays for the run page (orchestration.scratch). Returns the names removed."""
        return clean_run_dir(self.data.run_dir(inp))
