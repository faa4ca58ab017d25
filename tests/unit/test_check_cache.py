"""The data check kept per user, dataset and the settings it reads: a form change that alters none of them is
answered without a worker, one that alters any of them asks again (the service, with the workflow call
counted; no server)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from core.accounts import User
from core.datasets import ingest_csv
from orchestration.check_cache import CheckCache
from orchestration.contracts import CheckFinding, CheckReport, CheckRequest
from orchestration.errors import UserError
from orchestration.service import TrainEasyService
from tests.helpers import classification_csv, test_settings

ALICE, BOB = User("alice"), User("bob")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def report(n: int = 1) -> CheckReport:
    return CheckReport(n, n, 1, [CheckFinding("info", f"report {n}")])


def test_the_cache_keeps_answers_by_key_least_recently_used_first_out():
    cache = CheckCache(size=2)
    cache.put("a", report(1))
    cache.put("b", report(2))
    assert cache.get("a") == report(1)  # now "b" is the least recently used
    cache.put("c", report(3))
    assert cache.get("b") is None and cache.get("a") == report(1) and cache.get("c") == report(3)
    assert len(cache) == 2


def test_an_answer_is_asked_again_after_its_age_limit():
    clock = Clock()
    cache = CheckCache(seconds=60, clock=clock)
    cache.put("a", report())
    clock.now = 60
    assert cache.get("a") == report()
    clock.now = 61
    assert cache.get("a") is None and len(cache) == 0


def test_a_caller_cannot_change_the_kept_answer():
    cache = CheckCache()
    cache.put("a", report())
    cache.get("a").findings.clear()  # type: ignore[union-attr]
    assert cache.get("a") == report()


# --- through the service -----------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path):
    """The service with its workflow call counted: each call that reaches a worker is recorded."""
    svc = TrainEasyService(None, test_settings(tmp_path))  # type: ignore[arg-type]  # no Temporal needed here
    svc.asked = []  # type: ignore[attr-defined]

    async def data_task(user, kind, run, make_arg, nbytes=0):
        request = make_arg()
        assert kind == "check" and isinstance(request, CheckRequest)
        svc.asked.append(request)  # type: ignore[attr-defined]
        return report(len(svc.asked))  # type: ignore[attr-defined]

    svc._data_task = data_task  # type: ignore[method-assign]
    for user in (ALICE, BOB):
        ingest_csv(svc.storage, user.name, classification_csv(rows=60), "shop.csv", 1 << 20)
    return svc


def dataset_id(svc, user=ALICE) -> str:
    return svc.list_datasets(user)[0].dataset_id


FORM = {"model": "gradient_boosting_classifier", "params": {"n_estimators": 100, "learning_rate": 0.1}, "cv_folds": 0}


async def check(svc, user=ALICE, target="bought", model=None, params=None, cv_folds=0, test_size=0.2, include=None):
    return await svc.check_data(
        user,
        dataset_id(svc, user),
        target,
        model or FORM["model"],
        FORM["params"] if params is None else params,
        cv_folds,
        test_size,
        include,
    )


async def test_the_same_settings_ask_a_worker_once(service):
    first = await check(service)
    again = await check(service)
    assert len(service.asked) == 1 and first == again


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"n_estimators": 100, "learning_rate": 0.5}},  # not a setting the check reads
        {"params": {"learning_rate": 0.1, "n_estimators": 100, "subsample": 0.5}},
        {"params": {"n_estimators": 100}},  # the other parameters at their defaults, as before
    ],
    ids=["learning_rate", "subsample", "defaults-left-out"],
)
async def test_a_change_the_check_does_not_read_is_answered_without_a_worker(service, change):
    await check(service)
    await check(service, **change)
    assert len(service.asked) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"n_estimators": 300, "learning_rate": 0.1}},  # sizes the fit-time estimate
        {"model": "random_forest_classifier", "params": {}},
        {"cv_folds": 5},
        {"test_size": 0.3},
        {"include": ["age"]},
        {"target": "city"},
        {"user": BOB},  # the same file, another user: per user
    ],
    ids=["n_estimators", "model", "folds", "test-split", "kept-identifiers", "target", "user"],
)
async def test_a_change_the_check_reads_asks_a_worker_again(service, change):
    await check(service)
    await check(service, **change)
    assert len(service.asked) == 2
    asked = service.asked[1]
    assert asked.owner == change.get("user", ALICE).name and asked.test_size == change.get("test_size", 0.2)
    assert asked.include_columns == change.get("include", []) and asked.cv_folds == change.get("cv_folds", 0)


async def test_a_new_upload_of_the_dataset_asks_again(service):
    """A dataset deleted and uploaded again is a new version (its upload time), whatever its name."""
    await check(service)
    meta = service.storage.dataset_dir(ALICE.name, dataset_id(service)) / "meta.json"
    info = json.loads(meta.read_text())
    meta.write_text(json.dumps({**info, "created_at": "2999-01-01T00:00:00+00:00"}))
    await check(service)
    assert len(service.asked) == 2


async def test_a_deleted_dataset_is_not_answered_from_the_cache(service):
    await check(service)
    ds = dataset_id(service)
    (service.storage.dataset_dir(ALICE.name, ds) / "meta.json").unlink()
    with pytest.raises(UserError, match="No such dataset"):
        await service.check_data(ALICE, ds, "bought", FORM["model"], FORM["params"])


async def test_a_failed_check_is_not_kept(service):
    calls = []

    async def failing(user, kind, run, make_arg, nbytes=0):
        calls.append(make_arg())
        raise UserError("No worker process is running")

    service._data_task = failing
    for _ in range(2):
        with pytest.raises(UserError):
            await check(service)
    assert len(calls) == 2 and len(service.check_cache) == 0


def test_reports_are_kept_as_the_worker_sent_them():
    cache = CheckCache()
    kept = replace(report(), id_columns=["customer_id"])
    cache.put("k", kept)
    assert cache.get("k") == kept
