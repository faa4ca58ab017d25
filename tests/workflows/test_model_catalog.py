"""Every model of the catalog trains end to end through Temporal on small data and registers a version."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.accounts import User
from ml.catalog import MODELS
from orchestration.contracts import TrainRequest
from tests.helpers import classification_csv, eventually, finished_run, regression_csv, running_workers

# small sizes keep the whole catalog to seconds
FAST = {"n_estimators": 8, "max_iter": 30, "hidden_units": 8}


def fast_params(key: str) -> dict:
    names = {p.name for p in MODELS[key].params}
    return {k: v for k, v in FAST.items() if k in names}


async def test_every_model_family_trains_and_registers(client, settings, service):
    user = User(f"cat_{uuid.uuid4().hex[:6]}")
    # the whole catalog at once is more than the default per-user quota: an admin override, as in production
    service.quotas.set_override(user.name, max_runs_in_flight=len(MODELS), launches_per_minute=len(MODELS))
    async with running_workers(client, settings):
        cls = await service.upload_dataset(user, "cls.csv", classification_csv(rows=120))
        reg = await service.upload_dataset(user, "reg.csv", regression_csv(rows=120))
        runs = {}
        for key, spec in MODELS.items():
            dataset, target = (cls, "bought") if spec.task == "classification" else (reg, "y")
            runs[key] = await service.start_training(
                user, TrainRequest(user.name, dataset.dataset_id, target, key, fast_params(key), seed=7)
            )

        async def all_done():
            views = await asyncio.gather(*(service.get_run(user, r) for r in runs.values()))
            return views if all(not v.running for v in views) else None

        views = dict(zip(runs, await eventually(all_done, timeout=400, interval=1.0)))

    failed = {k: v.error for k, v in views.items() if v.status != "completed"}
    assert not failed
    for key, view in views.items():
        primary = "accuracy" if MODELS[key].task == "classification" else "r2"
        assert primary in view.metrics, key
        assert view.facts.model_version >= 1
        assert view.facts.cpu_seconds >= 0 and view.facts.peak_rss_mb > 0
    # iterative models report a learning curve with a point per increment
    for key in (
        "random_forest_classifier",
        "extra_trees_regressor",
        "gradient_boosting_classifier",
        "hist_gradient_boosting_regressor",
    ):
        curve = views[key].facts.curve
        assert len(curve["steps"]) >= 2 and len(curve["train"]) == len(curve["valid"]) == len(curve["steps"])
    assert views["mlp_classifier"].facts.curve["metric"] == "training loss"
    assert len(views["mlp_classifier"].facts.curve["train"]) >= 2
    assert len(service.list_models(user)) == len(MODELS)


@pytest.mark.parametrize("folds", [3])
async def test_cross_validation_reports_mean_and_std(client, settings, service, folds):
    user = User(f"cv_{uuid.uuid4().hex[:6]}")
    async with running_workers(client, settings):
        ds = await service.upload_dataset(user, "cls.csv", classification_csv(rows=200))
        run_id = await service.start_training(
            user, TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression", cv_folds=folds)
        )
        view = await finished_run(service, user, run_id)
    assert view.status == "completed", view.error
    cv = view.facts.cv
    assert set(cv) >= {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"}
    assert 0.5 < cv["accuracy"]["mean"] <= 1.0 and cv["accuracy"]["std"] >= 0.0
    assert next(s for s in view.stages if s.name == "cv").status == "done"
    evaluation = service.get_evaluation(user, run_id)
    assert evaluation is not None and evaluation.confusion and evaluation.roc and evaluation.importance
