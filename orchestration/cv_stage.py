"""The cross-validation stage's body: k folds on the training rows, each in a killable child, each saved for resume.

Called by `TrainingActivities.cross_validate` (orchestration/training_activities.py), which stays the registered
activity. Heavy libraries are imported inside the body, so that the UI can import the workflow definitions cheaply.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial

from temporalio import activity

from core.config import Settings
from core.storage import write_atomic
from orchestration.activity_errors import child_died, fit_refusal, too_long
from orchestration.contracts import RunFacts, StageHeartbeat, StageResult, TrainInput
from orchestration.heartbeat import heartbeating
from orchestration.run_data import RunData


def cv_stage(data: RunData, settings: Settings, inp: TrainInput) -> StageResult:
    """k-fold on the training rows; each finished fold is saved, so a retry resumes after it."""
    from ml.child_fit import ChildDied, FitTooLong, fit_predict_in_child
    from ml.evaluation import cv_summary, metrics_for
    from ml.guardrails import fit_wall_seconds
    from ml.training import make_pipeline

    spec, prep = data.prepared(inp)
    arrays = data.split(inp)
    k_total = inp.request.cv_folds
    progress_file = data.run_dir(inp) / "cv.json"
    done: list[dict[str, float]] = json.loads(progress_file.read_text()) if progress_file.is_file() else []
    resumed = len(done)
    state = StageHeartbeat(fold=len(done), of=k_total, step=len(done), resumed_from=resumed)
    wall = fit_wall_seconds(settings.max_fit_minutes)  # each fold, whatever the estimate said
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
                raise too_long(settings.max_fit_minutes, f"Cross-validation fold {k + 1} of {k_total}") from None
            except ValueError as exc:  # the data or the settings, not the worker: no retry would help
                raise fit_refusal(exc, f"Cross-validation fold {k + 1} of {k_total}") from None
            done.append(metrics_for(spec.task, prep.y.iloc[valid_rows], *predicted))
            write_atomic(progress_file, json.dumps(done).encode())
            state.fold = state.step = k + 1
    return StageResult(activity.info().attempt, RunFacts(cv=cv_summary(done), cv_resumed_from=resumed))
