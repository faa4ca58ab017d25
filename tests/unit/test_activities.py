"""Training and data activities run in temporalio's ActivityEnvironment: no server, real files."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

import orchestration.fit_stage as fit_stage
import orchestration.heartbeat as heartbeat
from core.datasets import ingest_csv
from core.names import new_run_id
from core.registry import Registry
from core.storage import Storage
from ml.persist import LIBRARIES
from orchestration.activity_errors import FIT_TOO_LONG, INVALID_INPUT
from orchestration.contracts import (
    CheckRequest,
    IngestRequest,
    PredictRequest,
    RunFacts,
    StageHeartbeat,
    TrainInput,
    TrainRequest,
)
from orchestration.data_activities import DataActivities
from orchestration.training_activities import TrainingActivities
from tests.helpers import classification_csv

LIMIT = 10 * 2**20
STEPS = ("load_and_validate", "preprocess_split", "fit_model", "evaluate_model", "register_model")


def _train_input(
    storage: Storage,
    owner: str = "alice",
    target: str = "bought",
    model: str = "random_forest_classifier",
    params: dict | None = None,
    rows: int = 200,
    **request,
) -> TrainInput:
    info = ingest_csv(storage, owner, classification_csv(rows=rows), "shop.csv", LIMIT)
    req = TrainRequest(
        owner=owner,
        dataset_id=info.dataset_id,
        target=target,
        model=model,
        params=params if params is not None else {"n_estimators": 50},
        seed=3,
        **request,
    )
    return TrainInput(new_run_id("train", owner), req)


@dataclasses.dataclass
class Run:
    storage: Storage
    inp: TrainInput
    results: dict  # activity name -> StageResult
    beats: dict  # activity name -> heartbeat details it sent
    after_fit: set  # names of the files in the run folder right after fit_model
    split: dict  # the arrays preprocess_split wrote (register_model removes the file later)
    after_save: set  # names of the files left in the run folder at the end

    @property
    def run_dir(self):
        return self.storage.run_dir(self.inp.request.owner, self.inp.run_id)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Run:
    """One run through the five training activities, with heartbeats and checkpoints frequent."""
    storage = Storage(tmp_path_factory.mktemp("home"))
    inp = _train_input(storage)
    acts = TrainingActivities(storage)
    env = ActivityEnvironment()
    beats: list[StageHeartbeat] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    results, beats_by_step, after_fit, split = {}, {}, set(), {}
    run_dir = storage.run_dir(inp.request.owner, inp.run_id)
    import ml.evaluation

    metrics = ml.evaluation.evaluate

    def evaluate_until_a_beat(*args: Any, **kwargs: Any) -> Any:
        """The metrics, then a wait (at most 10 s) for a heartbeat while they are the stage's part: on 200 rows
        they can end before the first beat's 5 ms, when what the stage reports would not be seen."""
        seen = len(beats)
        out = metrics(*args, **kwargs)
        deadline = time.monotonic() + 10
        while len(beats) == seen and time.monotonic() < deadline:
            time.sleep(0.001)
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(heartbeat, "HEARTBEAT_SECONDS", 0.005)
        mp.setattr(fit_stage, "CHECKPOINT_SECONDS", 0.0)
        mp.setattr(ml.evaluation, "evaluate", evaluate_until_a_beat)
        for name in STEPS:
            start = len(beats)
            results[name] = env.run(getattr(acts, name), inp)
            beats_by_step[name] = beats[start:]
            if name == "fit_model":
                after_fit = {p.name for p in run_dir.iterdir()}
            if name == "preprocess_split":
                with np.load(run_dir / "split.npz") as z:
                    split = {k: z[k] for k in z.files}
    return Run(storage, inp, results, beats_by_step, after_fit, split, {p.name for p in run_dir.iterdir()})


# --- the five steps in order ----------------------------------------------------------------------


def test_load_and_validate_reports_the_data(trained):
    facts = trained.results["load_and_validate"].facts
    assert facts.task == "classification"
    assert (facts.rows, facts.used_rows, facts.dropped_missing_target) == (200, 200, 0)
    assert (facts.features, facts.classes) == (3, 2)


def test_preprocess_split_writes_a_split_file(trained):
    train, test = trained.split["train"], trained.split["test"]
    assert (len(train), len(test)) == (160, 40)
    assert trained.results["preprocess_split"].facts == RunFacts(train_rows=160, test_rows=40)
    assert not set(train) & set(test)


def test_register_model_leaves_only_the_small_files_the_run_page_reads(trained):
    assert trained.after_save == {"evaluation.json"}  # fit.json is in the model card now


def test_fit_model_writes_the_model_and_its_costs(trained):
    assert {"model.skops", "fit.json"} <= trained.after_fit
    facts = trained.results["fit_model"].facts
    assert facts.fit_seconds >= 0 and facts.resumed_from_step == 0
    assert facts.curve["steps"][-1] == 50


def test_fit_model_heartbeats_progress(trained):
    beats = trained.beats["fit_model"]
    assert beats, "fit_model sent no heartbeat"
    assert beats[0].step == 0
    assert all(0 <= b.step <= b.of for b in beats)
    steps = [b.step for b in beats]
    assert steps == sorted(steps)


def test_evaluate_model_heartbeats_what_it_is_doing(trained):
    beats = trained.beats["evaluate_model"]
    assert beats[0] == StageHeartbeat(step=0, of=2, part="metrics")
    assert {(b.step, b.part) for b in beats} <= {(0, "metrics"), (1, "feature importance")}


def test_evaluate_model_writes_metrics(trained):
    evaluation = json.loads((trained.run_dir / "evaluation.json").read_text())
    metrics = trained.results["evaluate_model"].facts.metrics
    assert evaluation["metrics"] == metrics
    assert 0.5 < metrics["accuracy"] <= 1.0
    assert {row["feature"] for row in evaluation["importance"]} == {"age", "income", "city"}


def test_the_evaluation_file_reads_as_the_run_pages_evaluation(trained):
    """The file format is the evaluate stage's; the service reads it into the typed Evaluation the page draws."""
    from temporalio.converter import value_to_type

    from orchestration.evaluation_view import Evaluation

    written = json.loads((trained.run_dir / "evaluation.json").read_text())
    ev = value_to_type(Evaluation, written)
    assert ev.metrics == written["metrics"] and ev.labels == written["labels"] == ["no", "yes"]
    assert ev.confusion == written["confusion"] and sum(map(sum, ev.confusion)) == 40
    assert [c.label for c in ev.roc] == ["yes"] and 0.0 <= ev.roc[0].auc <= 1.0 and ev.pr[0].x
    assert [f.feature for f in ev.importance] == [row["feature"] for row in written["importance"]]
    assert not ev.actual and not ev.predicted


def test_register_model_registers_a_version_with_its_card(trained):
    registry = Registry(trained.storage)
    record = registry.by_run("alice", trained.inp.run_id)
    assert record is not None and trained.results["register_model"].facts.model_id == record.id
    assert registry.model_file(record).is_file()
    card = json.loads((registry.model_file(record).parent / "card.json").read_text())
    assert card["run_id"] == trained.inp.run_id and card["target"] == "bought"
    assert card["dataset"]["id"] == trained.inp.request.dataset_id
    assert [c["name"] for c in card["input_schema"]] == ["age", "income", "city"]
    # what `skops.io.load` outside TrainEasy must be told to trust: library types only
    assert "numpy.asarray" in card["skops_trusted"] and all(t.startswith(LIBRARIES) for t in card["skops_trusted"])
    # worked out in the fit stage, beside the model file: the same list skops gives for the registered file
    assert "model-trusted.json" in trained.after_fit
    assert card["skops_trusted"] == sorted(sio.get_untrusted_types(data=registry.model_file(record).read_bytes()))


def _run_up_to_register(tmp_path) -> tuple[Storage, TrainInput, TrainingActivities]:
    """A run's stages up to the save (register) stage, whose test comes next."""
    storage = Storage(tmp_path)
    inp = _train_input(storage)
    acts = TrainingActivities(storage)
    for name in STEPS[:-1]:
        ActivityEnvironment().run(getattr(acts, name), inp)
    return storage, inp, acts


def test_a_model_fitted_before_its_trusted_types_were_kept_registers_with_them(tmp_path):
    """A run fitted by a worker from before model-trusted.json and saved by one from after: the save stage works the
    list out from the model file itself."""
    storage, inp, acts = _run_up_to_register(tmp_path)
    (storage.run_dir("alice", inp.run_id) / "model-trusted.json").unlink()
    ActivityEnvironment().run(acts.register_model, inp)
    record = Registry(storage).by_run("alice", inp.run_id)
    assert record is not None and record.skops_trusted
    assert record.skops_trusted == sorted(sio.get_untrusted_types(data=Registry(storage).model_file(record).read_bytes()))


def test_a_model_file_written_again_after_its_trusted_types_registers_with_its_own(tmp_path):
    """A fit retried on a worker from before model-trusted.json writes the model file again and leaves the list an
    earlier attempt kept: the card must name what this file needs, not what the earlier one did."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from ml.persist import save_model

    storage, inp, acts = _run_up_to_register(tmp_path)
    run_dir = storage.run_dir("alice", inp.run_id)
    kept = run_dir / "model-trusted.json"
    stale = json.loads(kept.read_bytes())  # the forest's: numpy.asarray among them
    other = make_pipeline(FunctionTransformer(np.log1p)).fit(np.ones((3, 1)))  # needs none of them
    save_model(other, run_dir / "model.skops")  # what a worker from before the list does: the model file alone
    earlier = (run_dir / "model.skops").stat().st_mtime_ns - 10**9
    os.utime(kept, ns=(earlier, earlier))  # the list was kept before (coarse clocks give two writes one time)
    ActivityEnvironment().run(acts.register_model, inp)
    record = Registry(storage).by_run("alice", inp.run_id)
    assert record is not None and stale and record.skops_trusted != stale
    assert record.skops_trusted == sorted(sio.get_untrusted_types(data=Registry(storage).model_file(record).read_bytes()))


def test_register_model_removes_the_fit_checkpoints(trained):
    assert "checkpoint.json" in trained.after_fit
    assert sum(name.startswith("checkpoint-") for name in trained.after_fit) == 1, "older checkpoints are removed"
    assert not any(name.startswith("checkpoint") for name in trained.after_save)


def test_activity_results_report_the_attempt(trained):
    assert all(r.attempt == 1 for r in trained.results.values())


def test_register_model_twice_registers_one_version(trained):
    again = ActivityEnvironment().run(TrainingActivities(trained.storage).register_model, trained.inp)
    assert again.facts.model_version == 1
    assert len(Registry(trained.storage).list("alice")) == 1


def test_a_worker_checks_the_registrys_schema_once_not_on_every_save(trained, monkeypatch):
    import core.registry

    migrations: list[object] = []
    monkeypatch.setattr(core.registry, "migrate", migrations.append)
    activities = TrainingActivities(trained.storage)
    for _ in range(3):
        ActivityEnvironment().run(activities.register_model, trained.inp)
    assert len(migrations) == 1


# --- refusals -----------------------------------------------------------------------------------------


def _refusal(exc: ApplicationError) -> bool:
    return exc.non_retryable and exc.type == INVALID_INPUT


@pytest.mark.parametrize("step", ["load_and_validate", "preprocess_split", "fit_model"])
def test_bad_target_is_refused_as_non_retryable_invalid_input(tmp_path, step):
    storage = Storage(tmp_path)
    inp = _train_input(storage, target="no_such_column")
    with pytest.raises(ApplicationError, match="no_such_column") as err:
        ActivityEnvironment().run(getattr(TrainingActivities(storage), step), inp)
    assert _refusal(err.value)


def test_text_target_for_regression_is_refused(tmp_path):
    storage = Storage(tmp_path)
    inp = _train_input(storage, model="random_forest_regressor")
    with pytest.raises(ApplicationError, match="predicts numbers") as err:
        ActivityEnvironment().run(TrainingActivities(storage).load_and_validate, inp)
    assert _refusal(err.value)


def test_bad_parameter_is_refused(tmp_path):
    storage = Storage(tmp_path)
    inp = _train_input(storage, params={"n_estimators": 0})
    with pytest.raises(ApplicationError, match="n_estimators") as err:
        ActivityEnvironment().run(TrainingActivities(storage).load_and_validate, inp)
    assert _refusal(err.value)


def test_missing_dataset_is_refused(tmp_path):
    storage = Storage(tmp_path)
    inp = TrainInput(
        new_run_id("train", "alice"),
        TrainRequest(owner="alice", dataset_id="0123456789abcdef", target="bought", model="random_forest_classifier"),
    )
    with pytest.raises(ApplicationError, match="no longer exists") as err:
        ActivityEnvironment().run(TrainingActivities(storage).load_and_validate, inp)
    assert _refusal(err.value)


# --- retry and cancel ---------------------------------------------------------------------------------


def test_retried_fit_resumes_from_its_checkpoint_and_gives_the_same_model(tmp_path, monkeypatch):
    from ml.persist import load_model

    monkeypatch.setattr(fit_stage, "CHECKPOINT_SECONDS", 0.0)  # the forest grows in parts, each saved
    storage = Storage(tmp_path)
    inp = _train_input(storage, params={"n_estimators": 20})
    acts, env = TrainingActivities(storage), ActivityEnvironment()
    env.run(acts.preprocess_split, inp)
    env.run(acts.fit_model, inp)  # attempt 1 leaves the checkpoint of its last part but one
    run_dir = storage.run_dir("alice", inp.run_id)
    first = load_model(run_dir / "model.skops")
    trees = json.loads((run_dir / "checkpoint.json").read_text())["done"]
    assert 0 < trees < 20 and len(load_model(run_dir / f"checkpoint-{trees}.skops")[-1].estimators_) == trees
    env.info = dataclasses.replace(env.info, attempt=2)
    result = env.run(acts.fit_model, inp)
    assert result.facts.resumed_from_step == trees
    X = pd.read_csv(io.BytesIO(classification_csv())).drop(columns=["bought"])
    assert np.array_equal(load_model(run_dir / "model.skops").predict_proba(X), first.predict_proba(X))


def test_cancel_stops_a_long_fit_quickly(tmp_path, monkeypatch):
    """Cancel once the side thread heartbeats, i.e. while the forest is growing (500 trees, 16 000 rows)."""
    monkeypatch.setattr(heartbeat, "HEARTBEAT_SECONDS", 0.05)
    storage = Storage(tmp_path)
    inp = _train_input(storage, params={"n_estimators": 500}, rows=20_000)
    acts, env = TrainingActivities(storage), ActivityEnvironment()
    env.run(acts.preprocess_split, inp)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = env.run(acts.fit_model, inp)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    worker = threading.Thread(target=run, daemon=True)
    side_beat = threading.Event()

    def on_heartbeat(*details: Any) -> None:
        if threading.current_thread() is not worker:
            side_beat.set()

    env.on_heartbeat = on_heartbeat
    worker.start()
    assert side_beat.wait(30), "fit_model never heartbeated from its heartbeat thread"
    cancelled_at = time.monotonic()
    env.cancel()
    worker.join(30)
    assert not worker.is_alive(), "fit_model did not stop after cancel"
    assert isinstance(outcome.get("error"), CancelledError), outcome
    assert outcome["ended"] - cancelled_at < 5
    assert not (storage.run_dir("alice", inp.run_id) / "model.skops").exists()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the killed heartbeat thread
def test_cancel_while_the_heartbeat_thread_starts_still_cancels(tmp_path, monkeypatch):
    """The cancel arrives right as fit_model starts its heartbeat thread, as a real cancel can.

    On one CPU the new thread has usually not run yet, so its thread state still carries the
    activity thread's id and CPython delivers the cancel exception to it instead of the activity
    thread. A race, so it is tried a few times. Wrapping thread.start() in
    activity.shield_thread_cancel_exception() makes this test pass.
    """
    storage = Storage(tmp_path)
    inp = _train_input(storage, params={"n_estimators": 20})
    acts = TrainingActivities(storage)
    ActivityEnvironment().run(acts.preprocess_split, inp)
    real_start = threading._start_new_thread  # type: ignore[attr-defined]  # CPython's own, wrapped below
    cpus = os.sched_getaffinity(0)

    for _ in range(3):
        env = ActivityEnvironment()
        outcome: dict[str, Any] = {}

        def run(env=env, outcome=outcome) -> None:
            try:
                outcome["result"] = env.run(acts.fit_model, inp)
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                outcome["error"] = exc

        worker = threading.Thread(target=run, daemon=True)

        def start_then_cancel(fn, args, env=env, worker=worker):
            ident = real_start(fn, args)
            if threading.current_thread() is worker:
                env.cancel()
            return ident

        monkeypatch.setattr(threading, "_start_new_thread", start_then_cancel)
        os.sched_setaffinity(0, {min(cpus)})  # this thread, and the threads it starts, on one CPU
        try:
            worker.start()
            worker.join(3)
        finally:
            os.sched_setaffinity(0, cpus)
            monkeypatch.setattr(threading, "_start_new_thread", real_start)
        assert not worker.is_alive(), "fit_model hangs after a cancel that arrived as it started its heartbeat thread"
        assert isinstance(outcome.get("error"), CancelledError), outcome


# --- data activities ------------------------------------------------------------------------------------


def _stage(storage: Storage, data: bytes, owner: str = "alice", name: str = "0123456789abcdef0123456789abcdef.csv"):
    path = storage.upload_dir(owner) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_ingest_dataset_returns_a_summary_and_removes_the_staged_file(tmp_path):
    storage = Storage(tmp_path)
    staged = _stage(storage, classification_csv(rows=50))
    summary = ActivityEnvironment().run(
        DataActivities(storage).ingest_dataset, IngestRequest("alice", staged.name, "shop.csv", LIMIT)
    )
    assert summary.rows == 50 and summary.columns == 4 and summary.name == "shop.csv"
    assert (storage.dataset_dir("alice", summary.dataset_id) / "meta.json").is_file()
    assert not staged.exists()


def test_ingest_dataset_refuses_a_bad_upload_and_removes_the_staged_file(tmp_path):
    storage = Storage(tmp_path)
    staged = _stage(storage, b"PK\x03\x04 not a csv")
    with pytest.raises(ApplicationError, match="not a CSV") as err:
        ActivityEnvironment().run(DataActivities(storage).ingest_dataset, IngestRequest("alice", staged.name, "book.xlsx", LIMIT))
    assert _refusal(err.value)
    assert not staged.exists()
    assert not storage.datasets_dir("alice").exists()


def test_ingest_dataset_refuses_a_missing_upload(tmp_path):
    storage = Storage(tmp_path)
    with pytest.raises(ApplicationError, match="not found") as err:
        ActivityEnvironment().run(DataActivities(storage).ingest_dataset, IngestRequest("alice", "gone.csv", "shop.csv", LIMIT))
    assert _refusal(err.value)


def test_ingest_dataset_only_reads_from_the_owners_upload_folder(tmp_path):
    storage = Storage(tmp_path)
    _stage(storage, classification_csv(rows=50), owner="bob", name="secret.csv")
    with pytest.raises(ApplicationError, match="not found"):
        ActivityEnvironment().run(
            DataActivities(storage).ingest_dataset, IngestRequest("alice", "../../bob/uploads/secret.csv", "x.csv", LIMIT)
        )
    assert (storage.upload_dir("bob") / "secret.csv").exists()


def test_predict_with_a_registered_model_writes_predictions(trained):
    storage, model_id = trained.storage, trained.results["register_model"].facts.model_id
    staged = _stage(storage, classification_csv(rows=30, seed=9), name="fedcba9876543210fedcba9876543210.csv")
    out = ActivityEnvironment().run(
        DataActivities(storage).predict, PredictRequest("alice", model_id, staged.name, "new.csv", LIMIT)
    )
    assert out.rows == 30 and not staged.exists()
    written = pd.read_csv(storage.user_dir("alice") / "predictions" / out.file)
    assert set(written["prediction"]) <= {"yes", "no"}
    assert {"probability_yes", "probability_no"} <= set(written.columns)


def test_predict_refuses_a_file_missing_a_model_column(trained):
    storage, model_id = trained.storage, trained.results["register_model"].facts.model_id
    staged = _stage(storage, b"age,city\n30,paris\n40,lyon\n", name="00000000000000000000000000000000.csv")
    with pytest.raises(ApplicationError, match="income") as err:
        ActivityEnvironment().run(
            DataActivities(storage).predict, PredictRequest("alice", model_id, staged.name, "new.csv", LIMIT)
        )
    assert _refusal(err.value)


def test_predictions_csv_is_formula_safe(trained):
    storage, model_id = trained.storage, trained.results["register_model"].facts.model_id
    upload = b"age,income,city,note\n30,-1.5,\"=cmd|' /C calc'!A0\",+1+1\n40,60.5,paris,@SUM(A1)\n50,40,lyon,-2+3\n"
    staged = _stage(storage, upload, name="abababababababababababababababab.csv")
    out = ActivityEnvironment().run(
        DataActivities(storage).predict, PredictRequest("alice", model_id, staged.name, "new.csv", LIMIT)
    )
    written = pd.read_csv(storage.user_dir("alice") / "predictions" / out.file)
    assert written["city"].tolist() == ["'=cmd|' /C calc'!A0", "paris", "lyon"]
    assert written["note"].tolist() == ["'+1+1", "'@SUM(A1)", "'-2+3"]
    assert written["income"].tolist() == [-1.5, 60.5, 40.0] and written["age"].tolist() == [30, 40, 50]


# --- predictions obey the upload caps and the storage left ------------------------------------------------


def _predict(trained, data: bytes, settings=None, **caps):
    storage, model_id = trained.storage, trained.results["register_model"].facts.model_id
    staged = _stage(storage, data, name=f"{os.urandom(16).hex()}.csv")
    return ActivityEnvironment().run(
        DataActivities(storage, settings).predict, PredictRequest("alice", model_id, staged.name, "new.csv", LIMIT, **caps)
    )


def _prediction_files(trained) -> set[str]:
    folder = trained.storage.user_dir("alice") / "predictions"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_predict_refuses_output_beyond_the_cell_limit_before_predicting(trained):
    before = _prediction_files(trained)
    data = classification_csv(rows=30, seed=9)  # 30 rows x 4 columns = 120 cells: a valid upload
    with pytest.raises(ApplicationError, match=r"30 rows x 7 columns .* = 210 cells; the limit is 200 cells") as err:
        _predict(trained, data, max_cells=200)  # + prediction + 2 probabilities = 7 output columns
    assert _refusal(err.value)
    assert _prediction_files(trained) == before
    assert _predict(trained, data, max_cells=210).rows == 30


def test_predict_parses_its_input_with_the_upload_caps(trained):
    data = classification_csv(rows=30, seed=9)
    with pytest.raises(ApplicationError, match="4 columns; the limit is 3 columns") as err:
        _predict(trained, data, max_columns=3)
    assert _refusal(err.value)
    with pytest.raises(ApplicationError, match="120 cells; the limit is 100 cells") as err:
        _predict(trained, data, max_cells=100)
    assert _refusal(err.value)


def test_predict_refuses_a_file_beyond_the_storage_left_before_writing_it(trained):
    before = _prediction_files(trained)
    data = classification_csv(rows=5000, seed=9)  # ~100 KB input, ~150 KB of predictions
    with pytest.raises(
        ApplicationError,
        match=r"would be about 1\d\d\.\d KB, but only 100\.0 KB of your storage "
        r"quota is left",
    ) as err:
        _predict(trained, data, max_output_bytes=100 * 1024)
    assert _refusal(err.value)
    small = classification_csv(rows=40, seed=9)  # under the sampled estimate's row count: exact size
    with pytest.raises(ApplicationError, match=r"would be 1\.\d KB, but only 1\.0 KB") as err:
        _predict(trained, small, max_output_bytes=1024)
    assert _prediction_files(trained) == before
    out = _predict(trained, data, max_output_bytes=1024 * 1024)
    kept = out.file.replace(".csv", ".preview.json")  # its first rows as they are, for the page (read once)
    assert out.rows == 5000 and _prediction_files(trained) == before | {out.file, kept}


def test_predict_falls_back_to_the_workers_settings(trained, tmp_path):
    """A request from before the caps (or without them) gets the worker's TRAINEASY_MAX_CELLS, _COLUMNS, _STORED_MB."""
    from temporalio.converter import DataConverter

    old = DataConverter.default.payload_converter.to_payloads(
        [{"owner": "alice", "model_id": 1, "upload_file": "x.csv", "filename": "x.csv", "max_bytes": LIMIT}]
    )
    (req,) = DataConverter.default.payload_converter.from_payloads(old, [PredictRequest])
    assert (req.max_cells, req.max_columns, req.max_output_bytes) == (0, 0, 0)
    data = classification_csv(rows=30, seed=9)
    with pytest.raises(ApplicationError, match="the limit is 200 cells"):
        _predict(trained, data, _limited(tmp_path, max_cells=200))
    with pytest.raises(ApplicationError, match="the limit is 3 columns"):
        _predict(trained, data, _limited(tmp_path, max_columns=3))
    with pytest.raises(ApplicationError, match="storage quota is left"):
        _predict(trained, classification_csv(rows=50_000, seed=9), _limited(tmp_path, max_stored_mb=1))


# --- caps and budgets that the worker enforces (the caller's limit, else its own settings) ----------------


def _limited(tmp_path, **limits):
    from dataclasses import replace

    from core.config import load_settings

    return replace(load_settings(), home=tmp_path, **limits)


def test_ingest_refuses_more_columns_than_the_workers_setting(tmp_path):
    storage = Storage(tmp_path)
    staged = _stage(storage, classification_csv(rows=50))  # 4 columns
    acts = DataActivities(storage, _limited(tmp_path, max_columns=3))
    with pytest.raises(ApplicationError, match="4 columns; the limit is 3 columns") as err:
        ActivityEnvironment().run(acts.ingest_dataset, IngestRequest("alice", staged.name, "wide.csv", LIMIT))
    assert _refusal(err.value)
    assert not staged.exists() and not storage.datasets_dir("alice").exists()


def test_ingest_applies_the_callers_cell_limit(tmp_path):
    storage = Storage(tmp_path)
    acts = DataActivities(storage, _limited(tmp_path, max_cells=10**6))
    staged = _stage(storage, classification_csv(rows=50))  # 200 cells
    with pytest.raises(ApplicationError, match="200 cells; the limit is 199 cells") as err:
        ActivityEnvironment().run(acts.ingest_dataset, IngestRequest("alice", staged.name, "big.csv", LIMIT, max_cells=199))
    assert _refusal(err.value)


def test_an_ingest_request_from_before_the_caps_decodes_with_defaults():
    from temporalio.converter import DataConverter

    old = DataConverter.default.payload_converter.to_payloads(
        [{"owner": "alice", "upload_file": "x.csv", "filename": "x.csv", "max_bytes": LIMIT}]
    )
    (req,) = DataConverter.default.payload_converter.from_payloads(old, [IngestRequest])
    assert (req.max_columns, req.max_cells) == (0, 50_000_000)  # 0: the worker's TRAINEASY_MAX_COLUMNS


def test_a_fit_beyond_the_budget_is_refused_before_launch_by_the_check_and_the_load_step(tmp_path):
    storage = Storage(tmp_path)
    settings = _limited(tmp_path, max_fit_minutes=1)
    inp = _train_input(storage, model="svm_classifier", params={}, rows=50_000)  # SVC: ~80 s on 40,000 training rows
    check = ActivityEnvironment().run(
        DataActivities(storage, settings).check_dataset, CheckRequest("alice", inp.request.dataset_id, "bought", "svm_classifier")
    )
    errors = [f.message for f in check.findings if f.level == "error"]
    assert errors == ["Estimated fit time ~80 s exceeds the 1-minute budget; use fewer rows or a faster model."]
    with pytest.raises(ApplicationError, match="exceeds the 1-minute budget") as err:
        ActivityEnvironment().run(TrainingActivities(storage, settings).load_and_validate, inp)
    assert _refusal(err.value)
    within = ActivityEnvironment().run(TrainingActivities(storage, _limited(tmp_path)).load_and_validate, inp)
    assert within.facts.used_rows == 50_000


def test_fit_limits_come_from_the_environment(monkeypatch):
    from core.config import load_settings

    monkeypatch.setenv("TRAINEASY_MAX_FIT_MINUTES", "5")
    monkeypatch.setenv("TRAINEASY_MAX_COLUMNS", "20")
    monkeypatch.setenv("TRAINEASY_MAX_CELLS", "1000")
    s = load_settings()
    assert (s.max_fit_minutes, s.max_columns, s.max_cells) == (5, 20, 1000)
    monkeypatch.delenv("TRAINEASY_MAX_FIT_MINUTES")
    monkeypatch.delenv("TRAINEASY_MAX_COLUMNS")
    monkeypatch.delenv("TRAINEASY_MAX_CELLS")
    s = load_settings()
    assert (s.max_fit_minutes, s.max_columns, s.max_cells) == (60, 1000, 50_000_000)


# --- the hard wall: a fit running past 2 x TRAINEASY_MAX_FIT_MINUTES is stopped, whatever the estimate ------


def _too_long(exc: ApplicationError) -> bool:
    return exc.non_retryable and exc.type == FIT_TOO_LONG


def _timed(fn, *args):
    started = time.monotonic()
    try:
        fn(*args)
    except ApplicationError as exc:
        return exc, time.monotonic() - started
    raise AssertionError("the fit was not stopped")


@pytest.mark.slow
def test_a_single_call_fit_past_the_wall_is_killed_and_fails_for_good(tmp_path):
    """A wide MLP: the estimate ignores its width, so the load step lets it through (0.02-minute budget,
    ~0.8 s estimated); the fit would take minutes. The wall (2 x 1.2 s) kills the child process."""
    import ml.child_fit as child_fit

    storage = Storage(tmp_path)
    settings = _limited(tmp_path, max_fit_minutes=0.02)
    inp = _train_input(storage, model="mlp_classifier", params={"hidden_units": 512, "hidden_layers": 4}, rows=2000)
    acts, env = TrainingActivities(storage, settings), ActivityEnvironment()
    env.run(acts.load_and_validate, inp)  # within the budget, as estimated
    env.run(acts.preprocess_split, inp)
    exc, took = _timed(env.run, acts.fit_model, inp)
    assert _too_long(exc), exc
    assert "The fit ran longer than 2 × the 0.02-minute budget and was stopped;" in exc.message
    assert took < 10, f"stopped after {took:.1f}s"
    assert not child_fit.active_pids()
    assert not (storage.run_dir("alice", inp.run_id) / "model.skops").exists()


@pytest.mark.slow
def test_a_fit_past_the_wall_is_killed_and_fails_for_good(tmp_path, monkeypatch):
    import ml.child_fit as child_fit

    monkeypatch.setattr(heartbeat, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(child_fit, "PROBE_SECONDS", 0.05)
    storage = Storage(tmp_path)
    settings = _limited(tmp_path, max_fit_minutes=0.01)  # wall: 1.2 s; 500 trees on 16 000 rows take far longer
    inp = _train_input(storage, params={"n_estimators": 500}, rows=20_000)
    acts, env = TrainingActivities(storage, settings), ActivityEnvironment()
    env.run(acts.preprocess_split, inp)
    beats: list[StageHeartbeat] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    exc, took = _timed(env.run, acts.fit_model, inp)
    assert _too_long(exc), exc
    assert exc.message.startswith("The fit ran longer than 2 × the 0.01-minute budget and was stopped;")
    assert 0 < max(b.step or 0 for b in beats) < 500, "the fit ran to its end, or reported no tree"
    assert took < 15, f"stopped after {took:.1f}s"
    assert not child_fit.active_pids()
    assert not (storage.run_dir("alice", inp.run_id) / "model.skops").exists()


@pytest.mark.slow
def test_a_cross_validation_fold_past_the_wall_is_killed_and_fails_for_good(tmp_path):
    import ml.child_fit as child_fit

    storage = Storage(tmp_path)
    settings = _limited(tmp_path, max_fit_minutes=0.02)
    inp = _train_input(storage, model="mlp_classifier", params={"hidden_units": 512, "hidden_layers": 4}, rows=2000, cv_folds=2)
    acts, env = TrainingActivities(storage, settings), ActivityEnvironment()
    env.run(acts.preprocess_split, inp)
    exc, took = _timed(env.run, acts.cross_validate, inp)
    assert _too_long(exc), exc
    assert exc.message.startswith("Cross-validation fold 1 of 2 ran longer than 2 × the 0.02-minute budget")
    assert took < 10 and not child_fit.active_pids()


def test_the_load_step_counts_every_cross_validation_fit_against_the_budget(tmp_path):
    storage = Storage(tmp_path)
    settings = _limited(tmp_path, max_fit_minutes=1)
    inp = _train_input(storage, model="svm_classifier", params={}, rows=30_000)  # SVC estimate: ~45 s a fit
    ActivityEnvironment().run(TrainingActivities(storage, settings).load_and_validate, inp)
    inp.request.cv_folds = 5
    with pytest.raises(ApplicationError, match=r"\(6 fits: 5 cross-validation folds and the final fit") as err:
        ActivityEnvironment().run(TrainingActivities(storage, settings).load_and_validate, inp)
    assert _refusal(err.value)


def test_the_fit_stage_timeout_is_a_backstop_beyond_the_default_wall():
    """A start-to-close timeout is retried: the wall (failing for good) must come first with the default budget."""
    from core.config import Settings
    from ml.guardrails import fit_wall_seconds
    from orchestration.workflows.training import _STAGE_ACTIVITIES

    default = Settings.__dataclass_fields__["max_fit_minutes"].default
    assert isinstance(default, (int, float)) and (wall := fit_wall_seconds(default)) is not None
    assert _STAGE_ACTIVITIES["fit"][1].total_seconds() > wall + 30 * 60


def test_register_model_removes_what_a_fit_child_killed_while_storing_left(tmp_path):
    """A fit child killed (OOM, kill -9, its worker killed) while it stored the model leaves its temporary file in
    the run folder; the retried fit writes another. The run then completes: the leftover must not stay there,
    counted in the owner's stored bytes, until some worker starts again."""
    storage, inp, acts = _run_up_to_register(tmp_path)
    run_dir = storage.run_dir("alice", inp.run_id)
    (run_dir / "model.skops.4242.140000000000000.tmp").write_bytes(b"half a model")
    (run_dir / "model-trusted.json.4242.140000000000000.tmp").write_bytes(b"[")
    ActivityEnvironment().run(acts.register_model, inp)
    assert {p.name for p in run_dir.iterdir()} == {"evaluation.json"}
