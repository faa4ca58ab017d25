"""The fit child's side (ml/child_fit.py starts it): receive a job, select its rows, fit with progress reported
to the parent, send back the result with this fit's own costs; then wait for the next job.

A child that fitted cleanly and holds little more memory than when it was forked stays for the next fit
(ml/child_spare.py): its pages are its own by then, so that fit does not pay for copying them from the fork server
(a tiny fit ran in twice its in-process time in a fresh child). A fit's costs stay its own in a reused child: its
CPU is counted from the job's start, and its peak memory from a reset of the process's high-water mark.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import resource
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ml.child_pipe import Part, pickled, recv_object

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from ml.fitting import FitProgress
    from ml.model_spec import ModelSpec

# A child whose resident memory grew by more than this over its fork's keeps it (a big fit's freed heap, fragments):
# it exits after its fit instead of staying, and a fresh child is forked in its place. A small fit leaves 10-25 MB
# (allocator arenas, caches). A kept child's next peak starts from where it is (its high-water mark is reset to its
# resident size), so it may read up to this much over what a fresh child's would: never under.
STAY_MAX_GROWTH_MB = 32.0


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
    store: Any = None  # called here with the fitted pipeline, before its curve (the fit stage's: its model file)


def main(conn: Connection) -> None:
    """Serve jobs until the worker closes the pipe, or until a job leaves this process unfit to stay."""
    forked_mb = _status_mb("VmRSS")
    send_lock = threading.Lock()

    def send(*message: Any) -> None:
        send_parts([pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)])

    def send_parts(parts: list[Part]) -> None:
        """Messages that follow each other on the pipe, no other thread's between them."""
        with send_lock:
            for part in parts:
                conn.send_bytes(part)

    while True:
        try:
            job: Job = recv_object(conn)  # a spare waits here until a fit needs it (ml/child_spare.py)
        except (EOFError, OSError):  # its worker stopped or died first: nothing to do
            return
        peak_reset = _reset_peak()
        cpu0 = _cpu_seconds()
        outcome, warned = _serve(job, send, send_parts)
        del job  # its rows go before this process's memory is weighed
        _give_back_freed_memory()
        # staying needs a clean fit, memory back near the fork's, and a peak that the next job can reset
        stays = outcome[0] == "done" and peak_reset and _status_mb("VmRSS") <= forked_mb + STAY_MAX_GROWTH_MB
        peak_mb = _status_mb("VmHWM") if peak_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        send(*outcome, (round(_cpu_seconds() - cpu0, 3), round(peak_mb, 1)), warned, stays)
        if not stays:
            conn.close()
            return


def _serve(job: Job, send: Callable[..., None], send_parts: Callable[[list[Part]], None]) -> tuple[tuple[str, Any], list[str]]:
    """One job: ("done", value) or ("error", exception), and scikit-learn's ConvergenceWarnings during it."""
    from sklearn.exceptions import ConvergenceWarning

    from ml.fitting import FitProgress, live_probe

    done = threading.Event()
    progress = FitProgress()
    fitting: list[Pipeline] = []  # the pipeline, once made: what the side thread reads progress from

    def report() -> None:
        while not done.wait(job.probe_seconds):
            try:
                send("live", live_probe(fitting[0], progress) if fitting else {})
            except OSError:  # the parent is gone (a killed worker): stop fitting for nobody
                os._exit(3)

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        with warnings.catch_warnings(record=True) as caught:  # this process fits only this: no other thread warns
            warnings.simplefilter("always", ConvergenceWarning)
            value = _fit(job, fitting, progress, send, send_parts)
        return ("done", value), [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        return ("error", _picklable(exc)), []
    finally:
        done.set()
        reporter.join()  # no progress of this job may follow its result down the pipe, into the next job's


def _fit(
    job: Job, fitting: list[Pipeline], progress: FitProgress, send: Callable[..., None], send_parts: Callable[[list[Part]], None]
) -> Any:
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
        growth = Growth(job.every, lambda partial, trees: send_parts(_with_object(("checkpoint", trees), partial)), job.resume)
    sending: list[threading.Thread] = []

    def fitted(model: Pipeline) -> None:
        """The model goes to the worker (which keeps it for the run's next stages) while it is stored here: the
        pipe's write waits for the worker's reads without the GIL, the store is Python's work. The model's arrays
        go as they are, not copied (ml/child_pipe.py): until the sending thread is joined below, the store and the
        curve only read the model, and nothing may change it in place."""
        parts = _with_object(("fitted",), model)

        def send_model() -> None:
            try:
                send_parts(parts)
            except OSError:  # the parent is gone (a killed worker), as the progress thread would find: stop
                os._exit(3)

        thread = threading.Thread(target=send_model, name="traineasy-send-model")
        sending.append(thread)
        thread.start()
        if job.store is not None:
            job.store(model)

    try:
        _, curve = fit(pipeline, job.spec, X, y, valid=held, progress=progress, growth=growth, fitted=fitted)
    finally:
        for thread in sending:  # the model is in the pipe before anything else of this job, its result included
            thread.join()
    return None, curve  # the model went first


def _with_object(message: tuple, obj: Any) -> list[Part]:
    """A message followed by an object too big to copy into it: the worker reads the message, then the object
    (`ml.child_pipe.recv_object`)."""
    return [pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL), *pickled(obj)]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _give_back_freed_memory() -> None:
    """Hand the heap's freed pages back to the system (glibc's `malloc_trim`; nothing where there is none). glibc
    keeps them, more so once big blocks were freed (it then serves blocks up to 32 MB from the heap rather than
    mapping them): the job's rows, gone, still counted in the resident size, and a child that freed all it used
    did not stay for the next fit, or held memory nothing used while it waited."""
    global _trim
    if _trim is None:
        try:
            _trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):  # not glibc
            _trim = False
    if _trim:
        _trim(0)


_trim: Any = None  # glibc's malloc_trim once looked up; False where there is none


def _reset_peak() -> bool:
    """Reset this process's peak resident memory (VmHWM) to its current size (Linux 4.0+), so that the job's peak
    is the job's own; False where that cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float:
    """A memory figure of /proc/self/status (VmRSS: resident now, VmHWM: the peak), in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:  # no /proc: then no peak reset either, and the child never stays
        pass
    return 0.0


def _predictions(model: Pipeline, X_valid: pd.DataFrame) -> tuple[Any, Any, Any]:
    from ml.evaluation import predictions

    return *predictions(model, X_valid), getattr(model[-1], "classes_", None)


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any exception that does not travel becomes its text
        return RuntimeError(f"{type(exc).__name__}: {exc}")
