"""Data and settings that cannot train are refused at once, in plain words, by the training activities
themselves (the last line behind the data check and the service): no retry, no scikit-learn text."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from core.datasets import ingest_csv
from core.names import new_run_id
from core.storage import Storage, write_atomic
from orchestration.activity_errors import INVALID_INPUT, fit_refusal
from orchestration.contracts import TrainInput, TrainRequest
from orchestration.training_activities import TrainingActivities

LIMIT = 10 * 2**20


def _input(storage: Storage, df: pd.DataFrame, model: str, seed: int = 11, **request) -> TrainInput:
    info = ingest_csv(storage, "alice", df.to_csv(index=False).encode(), "d.csv", LIMIT)
    req = TrainRequest("alice", info.dataset_id, "y", model, {}, seed, 0.2, **request)
    return TrainInput(new_run_id("train", "alice"), req)


def _one_row_class() -> pd.DataFrame:
    """Ten 'p' and one 'q', last: with seed 11, a 20% split puts 'q' in the test rows."""
    return pd.DataFrame({"x": np.arange(11.0), "y": ["p"] * 10 + ["q"]})


def _refused(err: pytest.ExceptionInfo) -> ApplicationError:
    exc = err.value
    assert isinstance(exc, ApplicationError) and exc.non_retryable and exc.type == INVALID_INPUT, exc
    assert exc.category == ApplicationErrorCategory.BENIGN  # logged by the worker at debug level, without a traceback
    assert "solver" not in exc.message and "Error" not in exc.message
    return exc


@pytest.mark.parametrize("model", ["logistic_regression", "gaussian_nb"])
def test_the_load_stage_refuses_a_class_the_split_can_leave_out(tmp_path, model):
    storage = Storage(tmp_path)
    inp = _input(storage, _one_row_class(), model)
    with pytest.raises(ApplicationError) as err:
        ActivityEnvironment().run(TrainingActivities(storage).load_and_validate, inp)
    assert _refused(err).message.startswith("Class 'q' has only 1 row, and the 20% test split may take it")


@pytest.mark.parametrize("model", ["logistic_regression", "gaussian_nb"])
def test_the_split_stage_refuses_training_rows_without_a_class(tmp_path, model):
    storage = Storage(tmp_path)
    inp = _input(storage, _one_row_class(), model)
    with pytest.raises(ApplicationError) as err:
        ActivityEnvironment().run(TrainingActivities(storage).preprocess_split, inp)
    assert _refused(err).message.startswith("After the split, the training rows hold a single class ('p')")
    assert not (storage.run_dir("alice", inp.run_id) / "split.npz").exists()

    three = pd.DataFrame({"x": np.arange(11.0), "y": ["r", "r"] + ["p"] * 8 + ["q"]})
    inp = _input(storage, three, model)
    with pytest.raises(ApplicationError) as err:
        ActivityEnvironment().run(TrainingActivities(storage).preprocess_split, inp)
    assert _refused(err).message.startswith("After the split, the training rows hold no row of class 'q'")


def _split_of_one_class(storage: Storage, inp: TrainInput, y: pd.Series, **folds: np.ndarray) -> None:
    """A split file whose training rows hold one class (as only a bug before the fit could leave it)."""
    p = np.flatnonzero(y.to_numpy() == "p")
    q = np.flatnonzero(y.to_numpy() == "q")
    buf = io.BytesIO()
    np.savez(buf, train=p[:-2], test=np.concatenate([p[-2:], q]), **folds)  # type: ignore[arg-type]  # stub: **kwds as bool
    write_atomic(storage.run_dir("alice", inp.run_id) / "split.npz", buf.getvalue())


@pytest.mark.parametrize("model", ["logistic_regression", "gradient_boosting_classifier"])
def test_a_fit_scikit_learn_refuses_fails_at_once_in_plain_words(tmp_path, model):
    """One single-call fit (in a child process) and one incremental fit: scikit-learn's ValueError about the
    data is no reason to retry five times."""
    storage = Storage(tmp_path)
    df = pd.DataFrame({"x": np.arange(30.0), "y": ["p"] * 25 + ["q"] * 5})
    inp = _input(storage, df, model)
    _split_of_one_class(storage, inp, df.y)
    with pytest.raises(ApplicationError) as err:
        ActivityEnvironment().run(TrainingActivities(storage).fit_model, inp)
    assert _refused(err).message == (
        "The training rows hold a single class, and a classifier needs at least two. Use a smaller test split, "
        "add rows of the other classes, or pick another target."
    )


def test_a_cross_validation_fold_scikit_learn_refuses_fails_at_once_in_plain_words(tmp_path):
    storage = Storage(tmp_path)
    df = pd.DataFrame({"x": np.arange(30.0), "y": ["p"] * 25 + ["q"] * 5})
    inp = _input(storage, df, "logistic_regression", cv_folds=2)
    p = np.flatnonzero(df.y.to_numpy() == "p")
    _split_of_one_class(storage, inp, df.y, fold0_fit=p[:10], fold0_valid=p[10:20], fold1_fit=p[10:20], fold1_valid=p[:10])
    with pytest.raises(ApplicationError) as err:
        ActivityEnvironment().run(TrainingActivities(storage).cross_validate, inp)
    assert _refused(err).message.startswith("The training rows hold a single class")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Expected n_neighbors <= n_samples_fit, but n_neighbors = 20, n_samples_fit = 9", "more neighbours than the rows"),
        ("Input X contains infinity or a value too large for dtype('float64').", "infinite or extremely large"),
        ("n_splits=5 cannot be greater than the number of members in each class.", "fewer training rows than there"),
        ("Some odd new complaint.", "could not be trained with these settings on this data (Some odd new complaint)"),
    ],
)
def test_scikit_learn_value_errors_read_plainly(text, said):
    exc = fit_refusal(ValueError(text))
    assert exc.non_retryable and exc.type == INVALID_INPUT
    assert said in exc.message
