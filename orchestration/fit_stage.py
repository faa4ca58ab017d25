"""The fit stage's body: one call in a killable child, a long forest checkpointed for resume, and the fit's costs.

Called by `TrainingActivities.fit_model` (orchestration/training_activities.py), which stays the registered
activity. Heavy libraries are imported inside the body, so that the UI can import the workflow definitions cheaply.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from temporalio import activity

from core.config import Settings
from core.storage import write_atomic
from orchestration.activity_errors import child_died, fit_refusal, too_long
from orchestration.contracts import RunFacts, StageHeartbeat, StageResult, TrainInput
from orchestration.heartbeat import heartbeating
from orchestration.run_data import RunData

if TYPE_CHECKING:  # heavy: imported in the body
    from pathlib import Path

    from sklearn.pipeline import Pipeline

WORKER_ID = f"{os.getpid()}@{socket.gethostname()}"  # which worker process ran a fit
# A killed worker loses at most about this much of a forest's fit (ml.fitting.Growth); a shorter fit is one call.
CHECKPOINT_SECONDS = float(os.environ.get("TRAINEASY_CHECKPOINT_SECONDS", "30"))


def _checkpointer(run_dir: Path, checkpoint: Path) -> Callable[[Pipeline, int], None]:
    """What the growth calls with each part: the model so far saved, the previous checkpoint removed."""
    from ml.persist import save_model

    def save(partial: Pipeline, done: int) -> None:
        # the model file first, under its size's name; the JSON that points at it last, so a kill
        # between the two leaves the previous, consistent checkpoint in force
        name = f"checkpoint-{done}.skops"
        save_model(partial, run_dir / name)
        write_atomic(checkpoint, json.dumps({"done": done, "file": name}).encode())
        for old in run_dir.glob("checkpoint-*.skops"):
            if old.name != name:
                old.unlink(missing_ok=True)

    return save


def fit_stage(data: RunData, settings: Settings, inp: TrainInput) -> StageResult:
    """Fit on the training rows in one call, in a child process that a cancel kills (a long forest in parts,
    checkpointed for resume); live progress from the estimator's own output; its costs are this fit's alone."""
    from ml.child_fit import ChildDied, FitTooLong, fit_in_child
    from ml.curves import score_sample
    from ml.fitting import Growth, convergence_note, downsample
    from ml.guardrails import fit_wall_seconds
    from ml.persist import load_model
    from ml.training import make_pipeline

    spec, prep = data.prepared(inp)
    arrays = data.split(inp)
    run_dir = data.run_dir(inp)
    train = arrays["train"]
    checkpoint = run_dir / "checkpoint.json"
    grows = spec.family == "forest"  # the only models grown in parts (ml.fitting.Growth)
    # only an earlier attempt of this run leaves one: a retry, or the first attempt on the shared queue after
    # the run's own worker died (workflows/training.py), which Temporal counts as a new activity's attempt 1
    saved = json.loads(checkpoint.read_text()) if grows and checkpoint.is_file() else {}
    resumed = int(saved.get("done", 0))
    save = _checkpointer(run_dir, checkpoint)
    growth = Growth(CHECKPOINT_SECONDS, save, load_model(run_dir / saved["file"]) if resumed else None)
    started, cpu0 = time.monotonic(), time.thread_time()
    wall = fit_wall_seconds(settings.max_fit_minutes)  # the hard wall, whatever the estimate said
    state = StageHeartbeat(step=resumed, of=1, resumed_from=resumed)
    live: dict[str, Any] = {}  # what the child process reads from the estimator (ml.fitting.live_probe)

    def details() -> StageHeartbeat:
        beat = replace(state, elapsed=round(time.monotonic() - started, 2))
        if live:  # trees, iterations or epochs so far, in place of the single step of one fit call
            beat.step, beat.of, beat.loss, beat.unit = live["step"], live["of"], live.get("loss"), live.get("unit")
        return beat

    with heartbeating(details):
        try:
            out = fit_in_child(  # the child selects the training rows: this process holds no copy of them
                partial(make_pipeline, spec, inp.request.params, inp.request.seed),  # made from those rows
                spec,
                prep.X,
                prep.y,
                rows=train,
                valid_rows=arrays["test"][score_sample(len(arrays["test"]))],  # only those are sent to the child
                on_live=live.update,
                growth=growth if grows else None,
                time_limit=wall,
                store=data.model_store(inp),  # the child stores the model while it comes here, then draws its curve
            )
        except ChildDied as exc:
            raise child_died(exc) from None
        except FitTooLong:
            raise too_long(settings.max_fit_minutes) from None
        except ValueError as exc:  # the data or the settings, not the worker: no retry would help
            raise fit_refusal(exc) from None
        if live:  # the last report may predate the last trees
            live["step"] = live["of"]
        state.of = state.step = 1
        data.keep_model(inp, out.value)
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
