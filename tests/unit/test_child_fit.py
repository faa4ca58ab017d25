"""ml.child_fit: single-call fits in a child process equal plain scikit-learn, report live progress,
and never leave a process behind, whatever way the wait ends."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, ClassifierMixin

import ml.child_fit as child_fit
import orchestration.heartbeat as heartbeat
from core.storage import Storage
from ml.catalog import MODELS, get_model
from ml.child_fit import ChildDied, fit_in_child, fit_predict_in_child
from ml.fitting import Growth, fit, reference_fit
from ml.training import make_pipeline, prepare, split
from orchestration.contracts import StageHeartbeat
from orchestration.training_activities import TrainingActivities
from tests.unit.child_standins import SlowProbe
from tests.unit.test_activities import _train_input
from tests.unit.test_training import classification, regression, train_rows

FAST = {"max_iter": 50, "hidden_units": 8, "n_estimators": 20}
SVC = get_model("svm_classifier")  # the spec sent with the stand-in estimators below (only its task is read)


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" in status.read_text()
    except OSError:
        return True


class Dies(ClassifierMixin, BaseEstimator):
    """Killed in the middle of its fit, as the kernel's OOM killer would."""

    def fit(self, X, y):
        os.kill(os.getpid(), signal.SIGKILL)


class Sleeps(ClassifierMixin, BaseEstimator):
    """A long fit with a loss curve the child's probe thread reports."""

    def fit(self, X, y):
        self.loss_curve_ = [1.0]
        time.sleep(60)


class Refuses(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise ValueError("Input contains NaN, infinity or a value too large")


def _pipeline(estimator):
    from sklearn.pipeline import Pipeline

    return Pipeline([("model", estimator)])


def _whole(spec):
    """All the prepared rows, and the positions of the training and held-out ones: what the activities send."""
    df, target = (classification(), "bought") if spec.task == "classification" else (regression(), "spend")
    prep = prepare(df, target, spec)
    train, test = split(prep, 0.25, 3, stratify=spec.task == "classification")  # as train_rows splits
    return prep.X, prep.y, train, test


def _data(spec):
    df, target = (classification(), "bought") if spec.task == "classification" else (regression(), "spend")
    return train_rows(df, target, spec)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("key", list(MODELS))
def test_a_fit_in_a_child_process_equals_plain_scikit_learn(key):
    spec = MODELS[key]
    params = {k: v for k, v in FAST.items() if k in {p.name for p in spec.params}}
    X, y, X_test, y_test = _data(spec)
    whole_X, whole_y, train, test = _whole(spec)
    make = partial(make_pipeline, spec, params, 11)  # made in the child, from the rows it selects
    out = fit_in_child(make, spec, whole_X, whole_y, rows=train, valid_rows=test)
    reference = reference_fit(spec, params, 11, X, y)
    assert np.array_equal(out.value.predict(X_test), reference.predict(X_test))
    if hasattr(reference[-1], "predict_proba"):
        assert np.array_equal(out.value.predict_proba(X_test), reference.predict_proba(X_test))
    assert out.value[-1].get_params() == reference[-1].get_params()
    _, curve = fit(make_pipeline(spec, params, 11, X), spec, X, y, valid=(X_test, y_test))  # in this process
    assert out.curve == curve
    assert not child_fit.active_pids()


@pytest.mark.parametrize("key", [k for k, m in MODELS.items() if m.increments])
def test_the_trees_or_iterations_done_reach_the_parent_while_the_child_fits(monkeypatch, key):
    monkeypatch.setattr(child_fit, "PROBE_SECONDS", 0.005)
    spec = MODELS[key]
    df, target = (classification(3000), "bought") if spec.task == "classification" else (regression(3000), "spend")
    X, y, _, _ = train_rows(df, target, spec)
    seen: list[dict] = []
    fit_in_child(make_pipeline(spec, {spec.increments: 300}, 0, X), spec, X, y, on_live=seen.append)
    steps = [s["step"] for s in seen]
    assert {s["of"] for s in seen} == {300}
    assert steps == sorted(steps) and any(0 < step < 300 for step in steps), steps


def test_a_forest_grown_in_parts_sends_its_checkpoints_to_the_parent():
    spec = get_model("random_forest_classifier")
    X, y, X_test, _ = _data(spec)
    saved: list[tuple[int, int]] = []
    growth = Growth(0.0, lambda pipeline, trees: saved.append((trees, len(pipeline[-1].estimators_))))
    out = fit_in_child(make_pipeline(spec, {"n_estimators": 20}, 3, X), spec, X, y, growth=growth)
    assert len(saved) >= 2 and all(trees == held < 20 for trees, held in saved), saved
    reference = reference_fit(spec, {"n_estimators": 20}, 3, X, y)
    assert np.array_equal(out.value.predict_proba(X_test), reference.predict_proba(X_test))


def test_a_fold_fitted_in_a_child_returns_the_plain_predictions():
    spec = get_model("svm_classifier")
    X, y, X_test, _ = _data(spec)
    whole_X, whole_y, train, test = _whole(spec)
    out = fit_predict_in_child(make_pipeline(spec, {}, 0, X), whole_X, whole_y, train, test)
    predictions, proba, classes = out.value
    reference = reference_fit(spec, {}, 0, X, y)
    assert np.array_equal(predictions, reference.predict(X_test))
    assert proba is None and list(classes) == ["no", "yes"]  # SVC without probability=True
    assert out.cpu_seconds > 0 and out.peak_rss_mb > 0


def test_the_mlp_loss_reaches_the_parent_while_the_child_fits(monkeypatch):
    monkeypatch.setattr(child_fit, "PROBE_SECONDS", 0.01)
    spec = get_model("mlp_classifier")
    X, y, _, _ = _data(spec)
    seen: list[dict] = []
    pipeline = make_pipeline(spec, {"max_iter": 300, "hidden_units": 64, "alpha": 1e-6}, 0, X)
    out = fit_in_child(pipeline, spec, X, y, on_live=seen.append)
    assert seen, "no live progress from the child"
    assert all(0 < len(s["loss"]) <= s["step"] for s in seen)
    assert seen[-1]["step"] <= len(out.value[-1].loss_curve_)


def test_a_child_that_dies_is_a_clear_error_not_a_hang():
    X, y, _, _ = _data(get_model("svm_classifier"))
    started = time.monotonic()
    with pytest.raises(ChildDied, match="SIGKILL.*out of memory"):
        fit_in_child(_pipeline(Dies()), SVC, X, y)
    assert time.monotonic() - started < 10
    assert not child_fit.active_pids()


def test_an_error_in_the_child_is_raised_as_itself():
    X, y, _, _ = _data(get_model("svm_classifier"))
    with pytest.raises(ValueError, match="Input contains NaN"):
        fit_in_child(_pipeline(Refuses()), SVC, X, y)


class Stop(Exception):
    """Stands in for the CancelledError the SDK raises in the activity thread."""


@pytest.mark.timeout(30)
def test_any_exception_while_waiting_kills_the_child(monkeypatch):
    monkeypatch.setattr(child_fit, "PROBE_SECONDS", 0.05)
    X, y, _, _ = _data(get_model("svm_classifier"))
    pids: list[int] = []

    def interrupt(_live):
        pids.extend(child_fit.active_pids())
        raise Stop

    with pytest.raises(Stop):
        fit_in_child(_pipeline(Sleeps()), SVC, X, y, on_live=interrupt)
    assert pids and all(_gone(pid) for pid in pids)
    assert not child_fit.active_pids()


# --- the activity ---------------------------------------------------------------------------------------


def test_fit_model_heartbeats_the_mlp_loss_from_the_child(tmp_path, monkeypatch):
    from temporalio.testing import ActivityEnvironment

    monkeypatch.setattr(heartbeat, "HEARTBEAT_SECONDS", 0.01)
    monkeypatch.setattr(child_fit, "PROBE_SECONDS", 0.01)
    storage = Storage(tmp_path)
    inp = _train_input(storage, model="mlp_classifier", params={"max_iter": 300, "alpha": 1e-6}, rows=600)
    acts, env = TrainingActivities(storage), ActivityEnvironment()
    env.run(acts.preprocess_split, inp)
    beats: list[StageHeartbeat] = []
    lock = threading.Lock()

    def on_heartbeat(*details):
        with lock:
            beats.append(details[0])

    env.on_heartbeat = on_heartbeat
    result = env.run(acts.fit_model, inp)
    live = [(b, b.loss) for b in beats if b.loss]
    assert live, "no heartbeat carried the loss curve"
    assert all(b.of == 300 and b.step is not None and 0 < len(loss) <= b.step for b, loss in live)
    curve, costs = result.facts.curve, result.facts
    assert curve is not None and curve["metric"] == "training loss" and len(curve["train"]) >= len(live[-1][1])
    assert costs.cpu_seconds is not None and costs.cpu_seconds > 0 and costs.peak_rss_mb is not None and costs.peak_rss_mb > 0


def test_fit_model_heartbeats_the_trees_of_a_forest_from_the_child(tmp_path, monkeypatch):
    from temporalio.testing import ActivityEnvironment

    monkeypatch.setattr(heartbeat, "HEARTBEAT_SECONDS", 0.01)
    monkeypatch.setattr(child_fit, "PROBE_SECONDS", 0.01)
    storage = Storage(tmp_path)
    inp = _train_input(storage, params={"n_estimators": 300}, rows=3000)
    acts, env = TrainingActivities(storage), ActivityEnvironment()
    env.run(acts.preprocess_split, inp)
    beats: list[StageHeartbeat] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    result = env.run(acts.fit_model, inp)
    inside = [b.step or 0 for b in beats if b.of == 300]
    assert any(0 < step < 300 for step in inside), inside
    assert inside == sorted(inside)
    curve = result.facts.curve
    assert curve is not None and curve["steps"] == list(range(30, 301, 30)) and len(curve["valid"]) == 10


def test_fit_model_costs_are_this_fits_alone(tmp_path):
    """A worker that first held a lot of memory and burned CPU, then runs a small fit, reports the small fit's
    peak memory and CPU (the child's own), not the worker's high-water mark or lifetime CPU."""
    from temporalio.testing import ActivityEnvironment

    storage = Storage(tmp_path)
    inp = _train_input(storage, model="logistic_regression", params={}, rows=300)
    acts, env = TrainingActivities(storage), ActivityEnvironment()
    env.run(acts.preprocess_split, inp)
    ballast = np.ones(100 * 2**20)  # 800 MB, every page touched: the worker's memory is over 800 MB now
    burned = time.thread_time()
    while time.thread_time() - burned < 1.0:  # a second of CPU in this (the activity's) thread
        pass
    assert heartbeat.rss_mb() > 800
    facts = env.run(acts.fit_model, inp).facts
    del ballast
    assert facts.peak_rss_mb is not None and 0 < facts.peak_rss_mb < 400, facts.peak_rss_mb
    assert facts.cpu_seconds is not None and 0 < facts.cpu_seconds < 1.0, facts.cpu_seconds


# --- the spare child (ml/child_spare.py) -------------------------------------------------------------------


def _wait_for_spare(timeout: float = 10.0) -> int:
    from ml import child_spare

    deadline = time.monotonic() + timeout
    while (pid := child_spare.spare_pid()) is None:
        assert time.monotonic() < deadline, "no spare child was forked"
        time.sleep(0.01)
    return pid


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_fit_runs_in_the_waiting_child_which_then_stays_for_the_next(monkeypatch):
    monkeypatch.setattr(child_fit, "PROBE_SECONDS", 0.01)
    spec = get_model("mlp_classifier")
    X, y, _, _ = _data(spec)
    params = {"max_iter": 300, "hidden_units": 64}
    fit_in_child(make_pipeline(spec, params, 0, X), spec, X, y)
    spare = _wait_for_spare()
    assert not _gone(spare)
    pids: list[int] = []
    fitted = fit_in_child(
        make_pipeline(spec, params, 0, X), spec, X, y, on_live=lambda _live: pids.extend(child_fit.active_pids())
    )
    assert pids and set(pids) == {spare}  # the waiting child did the fit
    assert _wait_for_spare() == spare and not _gone(spare)  # and waits for the next one
    np.testing.assert_array_equal(fitted.value.predict(X), make_pipeline(spec, params, 0, X).fit(X, y).predict(X))


def test_a_child_whose_fit_failed_ends_and_a_fresh_one_is_forked():
    spec = get_model("logistic_regression")
    X, y, _, _ = _data(spec)
    fit_in_child(make_pipeline(spec, {}, 0, X), spec, X, y)
    failed = _wait_for_spare()
    with pytest.raises(ValueError, match="Input contains NaN"):
        fit_in_child(_pipeline(Refuses()), SVC, X, y)
    deadline = time.monotonic() + 10
    while not _gone(failed):
        assert time.monotonic() < deadline, "the child of a failed fit stayed"
        time.sleep(0.01)
    assert _wait_for_spare() != failed


def test_a_kept_child_sends_nothing_of_its_last_job_into_the_next(monkeypatch):
    """The progress thread of one job is done before its result is sent: the next job on the same child (maybe
    another user's) never receives the last one's progress, such as an MLP's loss curve."""
    monkeypatch.setattr(child_fit, "PROBE_SECONDS", 0.01)
    forest, params = get_model("random_forest_classifier"), {"n_estimators": 300}  # a second or so, without a loss
    X, y, _, _ = _data(forest)
    pids: list[int] = []
    fit_in_child(_pipeline(SlowProbe()), SVC, X, y, on_fitted=lambda _m: pids.extend(child_fit.active_pids()))
    heard: dict = {}
    fit_in_child(
        make_pipeline(forest, params, 0, X),
        forest,
        X,
        y,
        on_live=heard.update,
        on_fitted=lambda _m: pids.extend(child_fit.active_pids()),
    )
    assert len(set(pids)) == 1, pids  # the same child did both
    assert "loss" not in heard, heard


LEAKED: list[np.ndarray] = []


class Leaks(ClassifierMixin, BaseEstimator):
    """Keeps 200 MB in its process after its fit, as a fragmented heap would."""

    def fit(self, X, y):
        LEAKED.append(np.ones(25 * 2**20))
        self.classes_ = np.unique(y)
        return self


def test_a_child_left_bigger_by_its_fit_ends_instead_of_staying():
    X, y, _, _ = _data(get_model("svm_classifier"))
    pids: list[int] = []
    fit_in_child(_pipeline(Leaks()), SVC, X, y, on_fitted=lambda _model: pids.extend(child_fit.active_pids()))
    deadline = time.monotonic() + 10
    while not _gone(pids[0]):
        assert time.monotonic() < deadline, "a child holding 200 MB more than its fork stayed"
        time.sleep(0.01)
    assert _wait_for_spare() != pids[0]


def test_a_reused_child_reports_each_fits_own_peak_memory_and_cpu():
    """The second fit in the same child reports its own peak and CPU, not the first, bigger fit's."""
    spec = get_model("logistic_regression")
    rng = np.random.default_rng(0)
    big = pd.DataFrame(rng.normal(size=(200_000, 20)), columns=[f"f{i}" for i in range(20)])  # 32 MB, freed after
    big_y = pd.Series(np.where(big["f0"] > 0, "yes", "no"))
    X, y, _, _ = _data(spec)
    fit_in_child(make_pipeline(spec, {}, 0, X), spec, X, y)
    child = _wait_for_spare()
    first = fit_in_child(make_pipeline(spec, {"max_iter": 50}, 0, big), spec, big, big_y)
    assert _wait_for_spare() == child  # its memory went back: it stayed
    pids: list[int] = []
    second = fit_in_child(make_pipeline(spec, {}, 0, X), spec, X, y, on_fitted=lambda _m: pids.extend(child_fit.active_pids()))
    assert pids == [child]
    assert second.peak_rss_mb < first.peak_rss_mb - 50, (first.peak_rss_mb, second.peak_rss_mb)
    assert 0 < second.cpu_seconds < first.cpu_seconds / 2, (first.cpu_seconds, second.cpu_seconds)


def _a_child_stays_after_a_bigger_fit() -> None:
    """Run by the test below in a fresh interpreter, whose fork server (and so its children) starts with the
    allocator settings that test gives it."""
    spec = get_model("logistic_regression")
    rng = np.random.default_rng(0)
    big = pd.DataFrame(rng.normal(size=(200_000, 20)), columns=[f"f{i}" for i in range(20)])
    X, y, _, _ = _data(spec)
    fit_in_child(make_pipeline(spec, {}, 0, X), spec, X, y)
    child = _wait_for_spare()
    fit_in_child(make_pipeline(spec, {"max_iter": 50}, 0, big), spec, big, pd.Series(np.where(big["f0"] > 0, "yes", "no")))
    assert _wait_for_spare() == child, "the child did not stay after freeing its big fit"
    child_fit.stop()


def test_a_child_that_freed_a_big_fit_stays_whatever_the_allocator_kept(tmp_path):
    """glibc serves blocks up to its mmap threshold from the heap and keeps them once freed, and that threshold
    rises as big blocks are freed: how much a child's resident size still counts of a finished fit depends on what
    its fork server did before (in CI a child did not stay). With the threshold forced above the fit's blocks, the
    child must still give its freed memory back, and stay."""
    import subprocess
    import sys

    from core.config import PROJECT_ROOT

    code = "from tests.unit.test_child_fit import _a_child_stays_after_a_bigger_fit as t; t()"
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(64 * 2**20)}  # every block of the fit from the heap
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def test_a_dead_spare_is_replaced_and_a_stopped_worker_lets_its_spare_exit():
    from multiprocessing import Pipe

    from ml import child_spare
    from ml.child_main import main

    spec = get_model("logistic_regression")
    X, y, _, _ = _data(spec)
    child_fit.start()
    killed = _wait_for_spare()
    os.kill(killed, signal.SIGKILL)  # as the system's OOM killer might, while it waits
    deadline = time.monotonic() + 10
    while not _gone(killed):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    fitted = fit_in_child(make_pipeline(spec, {}, 0, X), spec, X, y)  # forks its own child instead
    np.testing.assert_array_equal(fitted.value.predict(X), make_pipeline(spec, {}, 0, X).fit(X, y).predict(X))
    # a spare whose worker is gone reads the end of its pipe and returns, without a traceback
    ours, theirs = Pipe(duplex=True)
    ours.close()
    main(theirs)  # returns: no job, no traceback
    spare = child_spare.take(child_fit.context())
    child_spare.discard(spare)
    assert spare[0].exitcode is not None and spare[0].pid is not None and _gone(spare[0].pid)


def _stored_by(record: Path, model) -> None:
    """A fit's `store`, run in its child: says which process ran it, and what it was given."""
    record.write_text(
        json.dumps({"pid": os.getpid(), "model": type(model[-1]).__name__, "fitted": hasattr(model[-1], "classes_")})
    )


def _store_fails(model) -> None:
    raise OSError(28, "No space left on device")


def test_the_child_stores_the_model_while_it_comes_here_then_draws_its_learning_curve(tmp_path):
    from ml.persist import load_model, store_model

    spec = get_model("gradient_boosting_classifier")
    X, y, _, _ = _data(spec)
    record = tmp_path / "stored.json"
    sent: list = []
    out = fit_in_child(
        make_pipeline(spec, {"n_estimators": 30}, 0, X),
        spec,
        X,
        y,
        valid_rows=np.arange(20),
        on_fitted=sent.append,
        store=partial(_stored_by, record),
    )
    stored = json.loads(record.read_text())
    assert stored["pid"] != os.getpid() and stored == {**stored, "model": "GradientBoostingClassifier", "fitted": True}
    assert len(sent) == 1 and out.value is sent[0]  # sent once, early; the last message holds only the curve
    assert out.curve is not None and out.curve.steps  # which the child drew after sending the model
    expected = make_pipeline(spec, {"n_estimators": 30}, 0, X).fit(X, y).predict(X)
    np.testing.assert_array_equal(out.value.predict(X), expected)

    # the fit stage's store: the model file and its trusted types, written by the child
    model, trusted = tmp_path / "run" / "model.skops", tmp_path / "run" / "model-trusted.json"
    out = fit_in_child(make_pipeline(spec, {"n_estimators": 30}, 0, X), spec, X, y, store=partial(store_model, model, trusted))
    np.testing.assert_array_equal(load_model(model).predict(X), expected)
    assert json.loads(trusted.read_text()) == sio.get_untrusted_types(file=model)
    assert os.stat(model).st_mode & 0o777 == 0o600

    # a store that fails fails the fit: the worker never goes on without the model's file
    with pytest.raises(OSError, match="No space left"):
        fit_in_child(make_pipeline(spec, {"n_estimators": 5}, 0, X), spec, X, y, store=_store_fails)
