"""What the service refuses before anything reaches a worker: odd split settings in the data check, model ids
that are not whole numbers, classes the split would leave out; and what an upload's profile calls a date."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from core.accounts import User
from core.datasets import ingest_csv
from orchestration.contracts import BatchItem, BatchRequest, TrainRequest
from orchestration.errors import UserError
from orchestration.service import TrainEasyService
from tests.helpers import classification_csv, test_settings

ALICE = User("alice")


@pytest.fixture
def service(tmp_path):
    svc = TrainEasyService(None, test_settings(tmp_path))  # type: ignore[arg-type]  # refused before any Temporal call

    async def no_worker(*args, **kwargs):
        raise AssertionError("this request should have been refused before reaching a worker")

    svc._data_task = no_worker  # type: ignore[method-assign]
    svc._reserve_run = no_worker  # type: ignore[method-assign]
    return svc


def _dataset(svc: TrainEasyService, data: bytes) -> str:
    return ingest_csv(svc.storage, ALICE.name, data, "d.csv", 1 << 20).dataset_id


@pytest.mark.parametrize(
    ("test_size", "cv_folds", "said"),
    [
        (math.nan, 0, "test split must be between 5% and 50%"),
        (math.inf, 0, "test split must be between 5% and 50%"),
        ("0.2", 0, "test split must be between 5% and 50%"),
        (0.2, -3, "Cross-validation takes 2 to 10 folds"),
        (0.2, 1, "Cross-validation takes 2 to 10 folds"),
        (0.2, 11, "Cross-validation takes 2 to 10 folds"),
        (0.2, True, "Cross-validation takes 2 to 10 folds"),
    ],
)
async def test_the_data_check_refuses_what_a_launch_refuses(service, test_size, cv_folds, said):
    ds = _dataset(service, classification_csv(rows=60))
    with pytest.raises(UserError, match=said):
        await service.check_data(ALICE, ds, "bought", "logistic_regression", {}, cv_folds, test_size)


@pytest.mark.parametrize("ids", [["7", "x"], [7.9], [True], "7", 7, None, [7, None]])
def test_retention_takes_only_whole_model_ids(service, ids):
    with pytest.raises(UserError, match="whole numbers"):
        service.apply_retention(ALICE, 1, ids)


def test_retention_with_whole_ids_still_reaches_the_registry(service):
    with pytest.raises(UserError, match="may no longer be deleted"):  # no such model: the registry says so
        service.apply_retention(ALICE, 1, [7])


def _more_classes_than_pairs() -> bytes:
    """11 rows for 6 classes: whatever the counts, one class has a single row."""
    return pd.DataFrame({"x": np.arange(11.0), "y": list("aabbccddeef")}).to_csv(index=False).encode()


async def test_a_launch_is_refused_when_the_classes_alone_show_one_can_be_missing(service):
    ds = _dataset(service, _more_classes_than_pairs())
    with pytest.raises(UserError, match="at least one class has a single row"):
        await service.start_training(ALICE, TrainRequest(ALICE.name, ds, "y", "gaussian_nb"))
    batch = BatchRequest(ALICE.name, ds, "y", [BatchItem("gaussian_nb"), BatchItem("logistic_regression")])
    with pytest.raises(UserError, match="at least one class has a single row"):
        await service.start_batch(ALICE, batch)


def test_a_date_column_is_profiled_as_a_date(service):
    df = pd.DataFrame(
        {
            "signup_date": pd.date_range("2023-01-01", periods=40, freq="D").strftime("%Y-%m-%d"),
            "city": ["paris", "lyon"] * 20,
            "spend": np.arange(40.0),
        }
    )
    info = ingest_csv(service.storage, ALICE.name, df.to_csv(index=False).encode(), "d.csv", 1 << 20)
    kinds = {c.name: c.kind for c in info.columns}
    assert kinds == {"signup_date": "date", "city": "categorical", "spend": "numeric"}
    stored = json.loads((service.storage.dataset_dir(ALICE.name, info.dataset_id) / "meta.json").read_text())
    assert [c["kind"] for c in stored["columns"]] == ["date", "categorical", "numeric"]


async def test_a_column_named_twice_to_keep_is_kept_once(service):
    ds = _dataset(service, classification_csv(rows=60))
    started: list[TrainRequest] = []

    async def reserve(*args, **kwargs):
        pass

    async def start(workflow, inp, *args):
        started.append(inp.request)

    service._reserve_run, service._start_reserved = reserve, start
    await service.start_training(ALICE, TrainRequest(ALICE.name, ds, "bought", "gaussian_nb", include_columns=["age", "age"]))
    assert started[0].include_columns == ["age"]
