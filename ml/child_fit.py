"""Fits that a cancel can stop: one fresh child process per fit, killed when its caller stops waiting.

A single C-level `fit` call (SVC, k-NN, a linear solver) never returns to Python bytecode, so the
asynchronous CancelledError that the Temporal SDK raises in the activity thread waits for the whole
fit (~26 s for a big SVC). Here the fit runs in a child process instead: the caller's thread only waits
on a pipe in short polls, hears the cancel within one poll, and kills the child in a `finally` (so a
failure or a timeout kills it too). Nothing keeps burning CPU after a cancel. A `time_limit` (the
hard wall of TRAINEASY_MAX_FIT_MINUTES, see ml/guardrails.py) kills a child still fitting after it.

Children are forked from a `forkserver` started once per worker process with the heavy modules already
imported (`set_forkserver_preload`), so a fit pays for a fork and for pickling its data, not for a new
interpreter and its imports. The child inherits the fork server's environment, where the native thread
pools are capped at 1 as `workers/__main__.py` caps them.

The child runs `ml.fitting.fit`: one call (a long forest in parts, each checkpoint sent to the parent to save),
then the learning curve. While it fits, a side thread in the child sends what `live_probe` reads (the trees or
iterations done, an MLP's loss per epoch) to the parent every `PROBE_SECONDS`; those sends also tell the child
when its parent is gone (a killed worker), and it exits instead of fitting for nobody. Its costs (CPU, peak
memory) are its own: this fit's, not the worker's lifetime high-water mark.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import resource
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ml.child_pipe import recv_job, send_job

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from ml.curves import Curve
    from ml.fitting import FitProgress, Growth
    from ml.model_spec import ModelSpec

# Imported by the fork server once, so that every child starts with them loaded.
PRELOAD = [
    "numpy",
    "pandas",
    "sklearn",
    "ml.training",
    "ml.fitting",
    "ml.child_fit",
    "sklearn.svm",
    "sklearn.neighbors",
    "sklearn.neural_network",
    "sklearn.linear_model",
    "sklearn.naive_bayes",
    "sklearn.tree",
    "sklearn.ensemble",
    "ml.child_warmup",
]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PROBE_SECONDS = 0.5  # live progress from the child (and proof that its parent still listens)
POLL_SECONDS = 0.1  # the waiting thread returns to bytecode this often: where a cancel can land

_lock = threading.Lock()
_context: multiprocessing.context.ForkServerContext | None = None
_active: set[int] = set()  # pids of children running now (tests check that a cancel leaves none)


class ChildDied(RuntimeError):
    """The fitting process ended without a result (out of memory, killed): worth another attempt."""


class FitTooLong(RuntimeError):
    """The fit ran past its time limit and its process was killed: another attempt would do the same."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The fit ran longer than its limit of {seconds:g} s and was stopped.")
        self.seconds = seconds


@dataclass
class ChildResult:
    value: Any  # the fitted pipeline, or (predictions, probabilities, classes)
    cpu_seconds: float  # CPU the child used
    peak_rss_mb: float  # the child's peak resident memory
    # scikit-learn's ConvergenceWarnings during the fit (their text): the worker's log is not where a user looks
    convergence: tuple[str, ...] = ()
    curve: Curve | None = None  # a fit's learning curve


@dataclass
class _Job:
    pipeline: Any  # a pipeline, or a function making it from the selected rows (make_pipeline reads them)
    X: Any  # the prepared rows: the child selects its own, so the worker holds no copy of them
    y: Any
    rows: Any = None  # positions of the rows to fit on (None: all of them)
    valid_rows: Any = None  # positions of held-out rows: a fit's learning curve scores them, a fold predicts them
    spec: ModelSpec | None = None  # given: a fit through ml.fitting.fit (progress, curve); else a fold
    every: float | None = None  # a forest grows in parts of this many seconds, each sent back as a checkpoint
    resume: Any = None  # the pipeline of a checkpoint to grow on from
    probe_seconds: float = PROBE_SECONDS


def context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context, its preload list set once per process."""
    global _context
    with _lock:
        if _context is None:
            for var in THREAD_VARS:  # before the fork server starts: its children inherit them
                os.environ.setdefault(var, "1")
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
    return _context


def start() -> None:
    """Start the fork server now (at worker start-up), so the first fit does not wait for its imports."""
    from multiprocessing import forkserver

    context()
    forkserver.ensure_running()


def active_pids() -> set[int]:
    return set(_active)


def fit_in_child(
    pipeline: Pipeline | Callable[[pd.DataFrame], Pipeline],
    spec: ModelSpec,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    rows: np.ndarray | None = None,
    valid_rows: np.ndarray | None = None,
    on_live: Callable[[dict[str, Any]], None] | None = None,
    growth: Growth | None = None,
    time_limit: float | None = None,
) -> ChildResult:
    """`ml.fitting.fit` in a child process on the rows at positions `rows` of X, y (all without), of `pipeline` or
    of the one `pipeline(X_rows)` makes: the result's value is the fitted pipeline, its curve the learning curve
    (on the held-out rows at `valid_rows` too). With
    `growth`, a forest grows in parts and `growth.save` is called here with each checkpoint. A child still
    fitting after `time_limit` seconds is killed and FitTooLong raised."""
    every, resume = (growth.every, growth.resume) if growth is not None else (None, None)
    job = _Job(pipeline, X, y, rows, valid_rows, spec, every, resume, PROBE_SECONDS)
    out = _run(job, on_live, time_limit, growth.save if growth is not None else None)
    out.value, out.curve = out.value
    return out


def fit_predict_in_child(
    pipeline: Pipeline | Callable[[pd.DataFrame], Pipeline],
    X: pd.DataFrame,
    y: pd.Series,
    rows: np.ndarray,
    valid_rows: np.ndarray,
    time_limit: float | None = None,
) -> ChildResult:
    """Fit in a child process on the rows at `rows` and return only (predictions, probabilities or None, classes
    or None) on those at `valid_rows`: what a cross-validation fold needs, without shipping the model back."""
    return _run(_Job(pipeline, X, y, rows, valid_rows, probe_seconds=PROBE_SECONDS), None, time_limit)


def _run(
    job: _Job,
    on_live: Callable[[dict[str, Any]], None] | None,
    time_limit: float | None = None,
    on_checkpoint: Callable[[Pipeline, int], None] | None = None,
) -> ChildResult:
    ctx = context()
    deadline = time.monotonic() + time_limit if time_limit else None
    parent_end, child_end = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child_main, args=(child_end,), name="traineasy-fit", daemon=True)
    proc.start()
    assert proc.pid is not None  # a started process has one
    _active.add(proc.pid)
    child_end.close()
    message = None
    try:
        try:
            send_job(parent_end, job)
            while True:
                if time_limit and deadline is not None and time.monotonic() > deadline and not parent_end.poll(0):
                    raise FitTooLong(time_limit)  # the finally below kills the child
                if not parent_end.poll(POLL_SECONDS):
                    if proc.is_alive() or parent_end.poll(0):
                        continue
                    break  # died without a word
                message = pickle.loads(parent_end.recv_bytes())
                if message[0] == "checkpoint" and on_checkpoint is not None:
                    on_checkpoint(*message[1])
                elif message[0] != "live":
                    break
                elif on_live is not None and message[1]:
                    on_live(message[1])
                message = None
        except (EOFError, BrokenPipeError, ConnectionResetError):
            message = None  # the child's end closed: it died
    finally:
        # every way out (result, error, cancel, timeout) ends the child; a finished one is already exiting
        if proc.exitcode is None:
            proc.kill()
        proc.join()
        _active.discard(proc.pid)
        parent_end.close()
    if message is None:
        raise ChildDied(_died(proc.exitcode))
    kind, value, costs, *warned = message
    if kind == "error":
        raise value
    cpu_seconds, peak_rss_mb = costs
    return ChildResult(value, cpu_seconds, peak_rss_mb, convergence=tuple(warned[0]) if warned else ())


def _died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory, or killed by the system)" if -exitcode == signal.SIGKILL else ""
        return f"The training process stopped unexpectedly: {name}{hint}. It will be retried."
    return f"The training process stopped unexpectedly (exit code {exitcode}). It will be retried."


def _costs() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3), round(usage.ru_maxrss / 1024, 1)  # KB on Linux


def _child_main(conn: Connection) -> None:
    from ml.fitting import FitProgress, live_probe

    job: _Job = recv_job(conn)
    send_lock = threading.Lock()
    done = threading.Event()
    progress = FitProgress()

    def send(kind: str, value: Any, costs: tuple[float, float] | None = None, *warned: list[str]) -> None:
        data = pickle.dumps((kind, value, costs, *warned), protocol=pickle.HIGHEST_PROTOCOL)
        with send_lock:
            conn.send_bytes(data)

    def report() -> None:
        while not done.wait(job.probe_seconds):
            try:
                send("live", live_probe(job.pipeline, progress))
            except OSError:  # the parent is gone (a killed worker): stop fitting for nobody
                os._exit(3)

    threading.Thread(target=report, daemon=True).start()
    from sklearn.exceptions import ConvergenceWarning

    warned: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # this process fits only this: no other thread warns
            warnings.simplefilter("always", ConvergenceWarning)
            value = _fit(job, progress, send)
        warned = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
        outcome: tuple[str, Any] = ("done", value)
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        outcome = ("error", _picklable(exc))
    done.set()
    send(*outcome, _costs(), warned)
    conn.close()


def _fit(job: _Job, progress: FitProgress, send: Callable[..., None]) -> Any:
    """The child's work: a fold's predictions, or the fitted pipeline and its learning curve."""
    from ml.fitting import Growth, fit

    X, y = (job.X, job.y) if job.rows is None else (job.X.iloc[job.rows], job.y.iloc[job.rows])
    held = None if job.valid_rows is None else (job.X.iloc[job.valid_rows], job.y.iloc[job.valid_rows])
    job.X = job.y = None  # the rows not selected are freed before the fit
    if callable(job.pipeline):
        job.pipeline = job.pipeline(X)
    if job.spec is None:
        assert held is not None  # fit_predict_in_child always sends them
        return _predictions(job.pipeline.fit(X, y), held[0])
    growth = None
    if job.every is not None:
        growth = Growth(job.every, lambda pipeline, trees: send("checkpoint", (pipeline, trees)), job.resume)
    return fit(job.pipeline, job.spec, X, y, valid=held, progress=progress, growth=growth)


def _predictions(model: Pipeline, X_valid: pd.DataFrame) -> tuple[Any, Any, Any]:
    proba = model.predict_proba(X_valid) if hasattr(model[-1], "predict_proba") else None
    return model.predict(X_valid), proba, getattr(model[-1], "classes_", None)


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any exception that does not travel becomes its text
        return RuntimeError(f"{type(exc).__name__}: {exc}")
