"""The fit child's side (ml/child_fit.py starts it): receive the job, select its rows, fit with progress reported
to the parent, send back the result with this process's own costs."""

from __future__ import annotations

import os
import pickle
import resource
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ml.child_pipe import recv_job

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from ml.fitting import FitProgress
    from ml.model_spec import ModelSpec


@dataclass
class Job:
    pipeline: Any  # a pipeline, or a function making it from the selected rows (make_pipeline reads them)
    X: Any  # the prepared rows: the child selects its own, so the worker holds no copy of them
    y: Any
    rows: Any  # positions of the rows to fit on (None: all of them)
    valid_rows: Any  # positions of held-out rows: a fit's learning curve scores them, a fold predicts them
    probe_seconds: float  # how often the progress is sent to the parent
    spec: ModelSpec | None = None  # given: a fit through ml.fitting.fit (progress, curve); else a fold
    every: float | None = None  # a forest grows in parts of this many seconds, each sent back as a checkpoint
    resume: Any = None  # the pipeline of a checkpoint to grow on from


def main(conn: Connection) -> None:
    from ml.fitting import FitProgress, live_probe

    try:
        job: Job = recv_job(conn)  # a spare waits here until a fit needs it (ml/child_spare.py)
    except (EOFError, OSError):  # its worker stopped or died first: nothing to do
        return
    send_lock = threading.Lock()
    done = threading.Event()
    progress = FitProgress()
    fitting: list[Pipeline] = []  # the pipeline, once made: what the side thread reads progress from

    def send(kind: str, value: Any, costs: tuple[float, float] | None = None, *warned: list[str]) -> None:
        data = pickle.dumps((kind, value, costs, *warned), protocol=pickle.HIGHEST_PROTOCOL)
        with send_lock:
            conn.send_bytes(data)

    def report() -> None:
        while not done.wait(job.probe_seconds):
            try:
                send("live", live_probe(fitting[0], progress) if fitting else {})
            except OSError:  # the parent is gone (a killed worker): stop fitting for nobody
                os._exit(3)

    threading.Thread(target=report, daemon=True).start()
    from sklearn.exceptions import ConvergenceWarning

    warned: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # this process fits only this: no other thread warns
            warnings.simplefilter("always", ConvergenceWarning)
            value = _fit(job, fitting, progress, send)
        warned = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
        outcome: tuple[str, Any] = ("done", value)
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        outcome = ("error", _picklable(exc))
    done.set()
    send(*outcome, _costs(), warned)
    conn.close()


def _fit(job: Job, fitting: list[Pipeline], progress: FitProgress, send: Callable[..., None]) -> Any:
    """A fold's predictions on the held-out rows, or the fitted pipeline and its learning curve. The pipeline,
    made from the selected rows if the job holds a function that makes it, is put in `fitting`."""
    from ml.fitting import Growth, fit

    X, y = (job.X, job.y) if job.rows is None else (job.X.iloc[job.rows], job.y.iloc[job.rows])
    held = None if job.valid_rows is None else (job.X.iloc[job.valid_rows], job.y.iloc[job.valid_rows])
    job.X = job.y = None  # the rows not selected are freed before the fit
    pipeline: Pipeline = job.pipeline(X) if callable(job.pipeline) else job.pipeline
    fitting.append(pipeline)

    if job.spec is None:
        assert held is not None  # fit_predict_in_child always sends them
        return _predictions(pipeline.fit(X, y), held[0])
    growth = None
    if job.every is not None:
        growth = Growth(job.every, lambda partial, trees: send("checkpoint", (partial, trees)), job.resume)
    # the model goes to the worker as soon as it is fitted (the worker saves it meanwhile), then only the curve
    _, curve = fit(pipeline, job.spec, X, y, valid=held, progress=progress, growth=growth, fitted=lambda p: send("fitted", p))
    return None, curve  # the model went first


def _costs() -> tuple[float, float]:
    """This process's CPU seconds and peak memory (MB): the fit's alone, whatever the worker did before."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3), round(usage.ru_maxrss / 1024, 1)  # KB on Linux


def _predictions(model: Pipeline, X_valid: pd.DataFrame) -> tuple[Any, Any, Any]:
    from ml.evaluation import predictions

    return *predictions(model, X_valid), getattr(model[-1], "classes_", None)


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any exception that does not travel becomes its text
        return RuntimeError(f"{type(exc).__name__}: {exc}")
