"""Fits that a cancel can stop: each fit in a child process, killed when its caller stops waiting.

A single C-level `fit` call (SVC, k-NN, a linear solver) never returns to Python bytecode, so the
asynchronous CancelledError that the Temporal SDK raises in the activity thread waits for the whole
fit (~26 s for a big SVC). Here the fit runs in a child process instead: the caller's thread only waits
on a pipe in short polls, hears the cancel within one poll, and kills the child in a `finally` (so a
failure or a timeout kills it too). Nothing keeps burning CPU after a cancel. A `time_limit` (the
hard wall of TRAINEASY_MAX_FIT_MINUTES, see ml/guardrails.py) kills a child still fitting after it.

Children are forked from a `forkserver` started once per worker process with the heavy modules already
imported (`set_forkserver_preload`), so a fit pays for a fork and for pickling its data, not for a new
interpreter and its imports. A child always waits for the next job (ml/child_spare.py): forked ahead, or the one
that did the last fit cleanly and stayed (ml/child_main.py), so a fit waits neither for a fork nor for the copying
of a fresh child's pages. The child inherits the fork server's environment, where the native thread
pools are capped at 1 as `workers/__main__.py` caps them.

The child runs `ml.fitting.fit`: one call (a long forest in parts, each checkpoint sent to the parent to save),
then the learning curve. While it fits, a side thread in the child sends what `live_probe` reads (the trees or
iterations done, an MLP's loss per epoch) to the parent every `PROBE_SECONDS`; those sends also tell the child
when its parent is gone (a killed worker), and it exits instead of fitting for nobody. Its costs (CPU, peak
memory) are this fit's own: not the worker's lifetime high-water mark, nor an earlier fit's in the same child.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ml import child_spare
from ml.child_main import Job
from ml.child_pipe import recv_object, send_object

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from ml.curves import Curve
    from ml.fitting import Growth
    from ml.model_spec import ModelSpec

# Imported by the fork server once, so that every child starts with them loaded.
PRELOAD = [
    "numpy",
    "pandas",
    "sklearn",
    "ml.training",
    "ml.fitting",
    "ml.child_fit",
    "ml.child_main",
    "ml.persist",  # skops: a fit's model is stored by its child (fit_in_child's store)
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

    ctx = context()
    forkserver.ensure_running()
    child_spare.refill(ctx)  # the first fit's child, forked now


def stop() -> None:
    """End the fork server and the spare child at a worker's stop. Left to notice their worker's exit by
    themselves, each goes through a whole interpreter teardown (numpy, pandas, scikit-learn loaded: seconds under
    load) after the worker is gone. The stdlib keeps the fork server's pid only privately (`_forkserver_pid`);
    SIGTERM ends it at once (it handles SIGCHLD and ignores SIGINT, nothing else)."""
    from multiprocessing import forkserver

    child_spare.discard_spare()
    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):  # gone already
        pass


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
    on_fitted: Callable[[Pipeline], None] | None = None,
    store: Callable[[Pipeline], None] | None = None,
) -> ChildResult:
    """`ml.fitting.fit` in a child process on the rows at positions `rows` of X, y (all without), of `pipeline` or
    of the one `pipeline(X_rows)` makes: the result's value is the fitted pipeline, its curve the learning curve
    (on the held-out rows at `valid_rows` too). With `growth`, a forest grows in parts and `growth.save` is
    called here with each checkpoint. A child still fitting after `time_limit` seconds is killed and FitTooLong
    raised. `on_fitted` is called here with the model as soon as it comes, while the child draws its curve.
    `store` (picklable: a module's function, or a partial of one) is called in the child with the fitted model,
    while the model comes here and before the curve is drawn: its work is the child's, on the other core, not
    this process's (whose event loop needs the GIL), and an error it raises is the fit's."""
    every, resume = (growth.every, growth.resume) if growth is not None else (None, None)
    job = Job(pipeline, X, y, rows, valid_rows, PROBE_SECONDS, spec, every, resume, store)
    out = _run(job, on_live, time_limit, growth.save if growth is not None else None, on_fitted)
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
    return _run(Job(pipeline, X, y, rows, valid_rows, PROBE_SECONDS), None, time_limit)


def _run(
    job: Job,
    on_live: Callable[[dict[str, Any]], None] | None,
    time_limit: float | None = None,
    on_checkpoint: Callable[[Pipeline, int], None] | None = None,
    on_fitted: Callable[[Pipeline], None] | None = None,
) -> ChildResult:
    deadline = time.monotonic() + time_limit if time_limit else None
    proc, parent_end = child_spare.take(context())  # waiting for this job (ml/child_spare.py)
    assert proc.pid is not None  # a started process has one
    _active.add(proc.pid)
    result = None  # the child's last message: its fitted value or its error
    fitted = None  # a fit's model, sent before its curve
    try:
        try:
            send_object(parent_end, job)
            while True:
                if deadline is not None and time.monotonic() > deadline and not parent_end.poll(0):
                    raise FitTooLong(time_limit)  # type: ignore[arg-type]  # a deadline comes from a time_limit  # the finally below kills the child
                if not parent_end.poll(POLL_SECONDS):
                    if proc.is_alive() or parent_end.poll(0):
                        continue
                    break  # died without a word
                message = receive(parent_end)
                if message[0] == "checkpoint":  # the forest so far follows its size
                    grown = receive(parent_end, whole_object=True)
                    if on_checkpoint is not None:
                        on_checkpoint(grown, message[1])
                elif message[0] == "fitted":  # the model, before its learning curve
                    fitted = receive(parent_end, whole_object=True)
                    if on_fitted is not None:
                        on_fitted(fitted)
                elif message[0] != "live":
                    result = message
                    break
                elif on_live is not None and message[1]:
                    on_live(message[1])
        except (EOFError, BrokenPipeError, ConnectionResetError):
            pass  # the child's end closed: it died
    finally:
        stays = result is not None and result[-1]  # the child waits for the next job (ml/child_main.py)
        if stays:
            child_spare.give_back((proc, parent_end))
        else:  # every other way out (error, cancel, timeout, a child too big to stay) ends the child
            parent_end.close()
            if result is not None:  # it sent its result and is exiting by itself
                child_spare.reap_later(proc)
            else:
                if proc.exitcode is None:
                    proc.kill()
                proc.join()
            child_spare.refill(context())  # a fresh spare for the next fit
        _active.discard(proc.pid)
    if result is None:
        raise ChildDied(died_message(proc.exitcode))
    kind, value, costs, warned, _ = result
    if kind == "error":
        raise value
    cpu_seconds, peak_rss_mb = costs
    if fitted is not None:  # a fit's value is (None, curve): its model came first
        value = (fitted, value[1])
    return ChildResult(value, cpu_seconds, peak_rss_mb, convergence=tuple(warned))


def receive(conn: Connection, whole_object: bool = False) -> Any:
    """The child's next message, or the object that follows one (`ml.child_pipe.recv_object`). EOFError when the
    child is gone, also in the middle of a message, where multiprocessing raises a bare OSError ("got end of file
    during message") instead."""
    try:
        return recv_object(conn) if whole_object else pickle.loads(conn.recv_bytes())
    except OSError as exc:
        raise EOFError(str(exc)) from exc


def died_message(exitcode: int | None) -> str:
    """What a user reads of a fit process that ended without a result. Whether it is tried again is for the
    activity to say, which knows its attempts (orchestration.activity_errors.child_died)."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory, or killed by the system)" if -exitcode == signal.SIGKILL else ""
        return f"The training process stopped unexpectedly: {name}{hint}."
    return f"The training process stopped unexpectedly (exit code {exitcode})."
