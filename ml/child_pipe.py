"""Big objects between a worker and its fit child, their arrays never pickled into one more copy: pickle protocol 5
hands the arrays' memory over as out-of-band buffers, written straight from the objects' own memory and read on
the other side into buffers the arrays then live in (multiprocessing passes each through a temporary copy of its
own, one buffer at a time). A fit's job goes this way to the child, its fitted model back. A plain `pickle.dumps`
would first build a copy of every array at once: for a job at 1M x 20, ~150 MB more at the worker's peak, and as
much again in the child; for a 100-tree forest's model, 20 MB copied in 0.05-0.2 s while the run waits (the first
writes to fresh memory are slow here).
"""

from __future__ import annotations

import pickle
from multiprocessing.connection import Connection
from typing import Any

Part = bytes | memoryview


def pickled(obj: Any) -> list[Part]:
    """`obj` as the messages `recv_object` reads: the buffers' sizes, the pickle's head, then each buffer, not
    copied (they stay views of `obj`'s arrays: send them before changing `obj`)."""
    buffers: list[memoryview] = []
    # numpy and pyarrow hand over only contiguous buffers, which raw() reads without copying
    head = pickle.dumps(obj, protocol=5, buffer_callback=lambda b: buffers.append(b.raw()))
    return [pickle.dumps([b.nbytes for b in buffers], protocol=5), head, *buffers]


def send_object(conn: Connection, obj: Any) -> None:
    for part in pickled(obj):
        conn.send_bytes(part)


def recv_object(conn: Connection) -> Any:
    sizes: list[int] = pickle.loads(conn.recv_bytes())
    head = conn.recv_bytes()
    buffers = []
    for size in sizes:
        buffer = bytearray(size)  # writable: the arrays unpickled on it may be changed in place by a fit
        conn.recv_bytes_into(buffer)
        buffers.append(buffer)
    return pickle.loads(head, buffers=buffers)
