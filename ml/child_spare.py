"""A fit child forked ahead of its job: the next fit starts at once, and reaping a finished one is off its path.

A child forked from the fork server takes ~50 ms before it can fit: the fork itself, then copying the pages its
first steps write to (copy on write). For a tiny model that is five times the fit. So one child is always forked
in advance, waiting for its job on its pipe (ml.child_main.main): `take` hands it over and forks the next one in
a background thread. A spare holds no job and almost no memory of its own (its pages are the fork server's until
it writes); if its worker dies, its pipe closes and it exits. A finished child is reaped in the background too.
"""

from __future__ import annotations

import threading
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, ForkServerProcess

from ml.child_main import main

Child = tuple[ForkServerProcess, Connection]  # the process and the worker's end of its pipe

_lock = threading.Lock()
_spare: Child | None = None


def fork(ctx: ForkServerContext) -> Child:
    parent_end, child_end = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=main, args=(child_end,), name="traineasy-fit", daemon=True)
    proc.start()
    child_end.close()
    return proc, parent_end


def take(ctx: ForkServerContext) -> Child:
    """The spare child if one waits alive (else a new one), and the next spare forked behind it."""
    global _spare
    with _lock:
        spare, _spare = _spare, None
    if spare is not None and not spare[0].is_alive():
        discard(spare)
        spare = None
    child = spare or fork(ctx)
    refill(ctx)
    return child


def refill(ctx: ForkServerContext) -> None:
    """Fork a spare in a background thread, unless one waits already."""
    threading.Thread(target=_refill, args=(ctx,), name="traineasy-spare", daemon=True).start()


def _refill(ctx: ForkServerContext) -> None:
    global _spare
    with _lock:
        if _spare is None:
            try:
                _spare = fork(ctx)
            except OSError:  # no fork now (out of processes or memory): the next fit forks its own child
                _spare = None


def spare_pid() -> int | None:
    with _lock:
        return _spare[0].pid if _spare is not None else None


def discard(child: Child) -> None:
    proc, conn = child
    conn.close()  # a waiting child reads the end of its pipe and exits
    if proc.exitcode is None:
        proc.kill()
    proc.join()


def reap_later(proc: ForkServerProcess) -> None:
    """Wait for a child that sent its result and is exiting, in a background thread."""
    threading.Thread(target=proc.join, name="traineasy-reap", daemon=True).start()
