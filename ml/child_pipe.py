"""Sending a fit's job to its child process without a copy of its data in the worker: pickle protocol 5 hands the
arrays' memory over as out-of-band buffers, written straight from the DataFrame's own memory, and read in the
child into buffers the arrays then live in. A plain `pickle.dumps` would first build one more copy of every row
(at 1M x 20: ~150 MB more at the worker's peak, and as much again in the child).
"""

from __future__ import annotations

import pickle
from multiprocessing.connection import Connection
from typing import Any


def send_job(conn: Connection, job: Any) -> None:
    buffers: list[memoryview] = []
    # numpy and pyarrow hand over only contiguous buffers, which raw() reads without copying
    head = pickle.dumps(job, protocol=5, buffer_callback=lambda b: buffers.append(b.raw()))
    conn.send_bytes(pickle.dumps([b.nbytes for b in buffers], protocol=5))
    conn.send_bytes(head)
    for buffer in buffers:
        conn.send_bytes(buffer)


def recv_job(conn: Connection) -> Any:
    sizes: list[int] = pickle.loads(conn.recv_bytes())
    head = conn.recv_bytes()
    buffers = []
    for size in sizes:
        buffer = bytearray(size)  # writable: the arrays unpickled on it may be changed in place by a fit
        conn.recv_bytes_into(buffer)
        buffers.append(buffer)
    return pickle.loads(head, buffers=buffers)
