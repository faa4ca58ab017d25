"""The fit child waiting for the next job: the next fit starts at once, and reaping a finished one is off its path.

A child forked from the fork server takes ~50 ms before it can fit: the fork itself, then copying the pages its
first steps write to (copy on write). For a tiny model that is several times the fit. So a child always waits for
the next job on its pipe (ml.child_main.main), and `take` hands it over: the child of the last fit, `give_back` to
wait again when it fitted cleanly and stayed small (its pages are its own by then), or else one forked in advance
in a background thread (`refill`). A spare holds no job; if its worker dies, its pipe closes and it exits. A
finished child that does not stay is reaped in the background.
"""

from __future__ import annotations

import threading
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, ForkServerProcess

from ml.child_main import main

Child = tuple[ForkServerProcess, Connection]  # the process and the worker's end of its pipe

_lock = threading.Lock()  # held while a spare is forked: take, give_back and spare_pid wait for a fork under way
_spare: Child | None = None
refilled = threading.Event()  # set once a refill has ended, with a spare forked or not (a worker's start waits)


def fork(ctx: ForkServerContext) -> Child:
    parent_end, child_end = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=main, args=(child_end,), name="traineasy-fit", daemon=True)
    proc.start()
    child_end.close()
    return proc, parent_end


def take(ctx: ForkServerContext) -> Child:
    """The spare child if one waits alive, else a new one."""
    global _spare
    with _lock:
        spare, _spare = _spare, None
    if spare is not None and not spare[0].is_alive():
        discard(spare)
        spare = None
    return spare or fork(ctx)


def give_back(child: Child) -> None:
    """A child that finished its fit and stays: it waits for the next job (one spare at most; an extra one ends)."""
    global _spare
    with _lock:
        extra, _spare = _spare, child
    if extra is not None:
        discard(extra)


def refill(ctx: ForkServerContext) -> None:
    """Fork a spare in a background thread, unless one waits already: at a worker's start, and after a child that
    did not stay for the next job."""
    threading.Thread(target=_refill, args=(ctx,), name="traineasy-spare", daemon=True).start()


def _refill(ctx: ForkServerContext) -> None:
    global _spare
    try:
        with _lock:
            if _spare is None:
                _spare = fork(ctx)
    except OSError:  # no fork now (out of processes or memory): the next fit forks its own child
        pass
    finally:
        refilled.set()


def spare_pid() -> int | None:
    with _lock:
        return _spare[0].pid if _spare is not None else None


def discard_spare() -> None:
    """The waiting child ended (its worker stops)."""
    global _spare
    with _lock:
        spare, _spare = _spare, None
    if spare is not None:
        discard(spare)


def discard(child: Child) -> None:
    proc, conn = child
    conn.close()  # a waiting child reads the end of its pipe and exits
    if proc.exitcode is None:
        proc.kill()
    proc.join()


def reap_later(proc: ForkServerProcess) -> None:
    """Wait for a child that sent its result and is exiting, in a background thread."""
    threading.Thread(target=proc.join, name="traineasy-reap", daemon=True).start()
