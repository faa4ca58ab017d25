"""ml.child_pipe: a fit's job and its fitted model cross the pipe with their arrays out of band (never copied into
the pickle), and arrive equal and writable; a child gone in the middle of one reads as gone (ml.child_fit.receive)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from ml.child_fit import receive
from ml.child_pipe import pickled, recv_object, send_object


def _forest() -> RandomForestClassifier:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X, rng.random(2000) > 0.5)  # noise: deep trees


def _through_a_pipe(obj):
    here, there = multiprocessing.Pipe(duplex=True)
    sender = threading.Thread(target=send_object, args=(here, obj))  # a big object fills the pipe's buffer
    sender.start()
    try:
        return recv_object(there)
    finally:
        sender.join()
        here.close()
        there.close()


def test_a_models_arrays_go_out_of_band_not_into_the_pickle():
    model = _forest()
    sizes, head, *buffers = pickled(model)
    in_band = len(pickle.dumps(model, protocol=5))
    assert pickle.loads(sizes) == [memoryview(b).nbytes for b in buffers]
    assert sum(memoryview(b).nbytes for b in buffers) > 0.9 * in_band  # the trees' nodes and values
    assert len(head) < 0.1 * in_band


def test_a_model_arrives_equal_and_predicts_the_same():
    model = _forest()
    X = np.random.default_rng(1).normal(size=(300, 5))
    received = _through_a_pipe(model)
    np.testing.assert_array_equal(received.predict_proba(X), model.predict_proba(X))


def test_a_frame_arrives_equal_and_its_arrays_writable():
    frame = pd.DataFrame({"a": np.arange(50_000, dtype=float), "b": np.arange(50_000) % 7})
    pd.testing.assert_frame_equal(_through_a_pipe(frame), frame)
    array = _through_a_pipe(np.arange(50_000, dtype=float))
    array[0] = -1.0  # a fit may change its rows in place
    assert array[0] == -1.0 and array[1] == 1.0


def _dies_in_the_middle_of_a_model(conn, read):
    parts = pickled(np.arange(2_000_000, dtype=float))  # 16 MB: more than the pipe holds
    conn.send_bytes(pickle.dumps(("fitted",)))
    for part in parts[:2]:
        conn.send_bytes(part)
    read.set()
    conn.send_bytes(parts[2])  # blocks until the worker reads it: killed in the middle


def test_a_child_that_dies_in_the_middle_of_a_message_reads_as_gone():
    context = multiprocessing.get_context("fork")
    here, there = context.Pipe(duplex=True)
    read = context.Event()
    child = context.Process(target=_dies_in_the_middle_of_a_model, args=(there, read))
    child.start()
    there.close()
    try:
        assert receive(here) == ("fitted",)
        assert read.wait(30)
        time.sleep(0.2)  # its last send has filled the pipe by now
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        with pytest.raises(EOFError):  # what fit_in_child takes for a dead child (ChildDied), not a stray OSError
            receive(here, whole_object=True)
    finally:
        here.close()
        child.kill()
        child.join()
