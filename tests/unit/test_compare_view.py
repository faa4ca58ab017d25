"""ui.compare_view: only comparable models are offered together, and the table has no empty cell."""

from __future__ import annotations

import itertools

from core.model_record import ModelRecord
from ui.compare_view import comparable_groups, compare_table

_ids = itertools.count(1)
CLS = {"accuracy": 0.9, "balanced_accuracy": 0.8, "f1_macro": 0.7, "roc_auc": 0.95}
REG = {"r2": 0.6, "mae": 1.5, "rmse": 2.0}


def model(name: str, task: str, dataset: str, target: str, metrics: dict, **card) -> ModelRecord:
    i = next(_ids)
    return ModelRecord(
        i,
        "alice",
        name,
        1,
        f"run{i}",
        "2026-01-01",
        1,
        (),
        {"task": task, "dataset": {"id": dataset, "name": f"{dataset}.csv"}, "target": target, "metrics": metrics, **card},
        dataset_id=dataset,  # the registry's columns, from the same request as the card
        target=target,
    )


def test_models_are_grouped_by_task_dataset_and_target_newest_group_first():
    newest = model("mlp_regressor", "regression", "houses", "price", REG)
    forest = model("random_forest_classifier", "classification", "shop", "bought", CLS)
    logit = model("logistic_regression", "classification", "shop", "bought", CLS)
    groups = comparable_groups([newest, forest, logit])
    assert [g.members for g in groups] == [(newest,), (forest, logit)]
    assert groups[0].label == "houses.csv → price (regression, 1 model)"
    assert all(len({m.task for m in g.members}) == 1 for g in groups)  # never regression with classification


def test_a_task_on_several_datasets_also_gets_a_group_of_all_its_models():
    a = model("ridge", "regression", "houses", "price", REG)
    b = model("ridge", "regression", "flats", "rent", REG)
    c = model("gaussian_nb", "classification", "shop", "bought", CLS)
    groups = comparable_groups([a, b, c])
    assert [g.members for g in groups] == [(a,), (b,), (c,), (a, b)]
    assert groups[-1].label == "All regression models, any dataset (2)"


def test_group_keys_stay_the_same_when_models_are_added():
    a = model("ridge", "regression", "houses", "price", REG)
    before = {g.label.split(" (")[0]: g.key for g in comparable_groups([a])}
    after = {g.label.split(" (")[0]: g.key for g in comparable_groups([model("svr", "regression", "x", "y", REG), a])}
    assert after["houses.csv → price"] == before["houses.csv → price"]


def test_the_table_has_only_scores_every_model_has_and_no_empty_cell():
    with_auc = model("logistic_regression", "classification", "shop", "bought", CLS, fit_seconds=1.5)
    no_auc = model("svm_classifier", "classification", "shop", "bought", {k: v for k, v in CLS.items() if k != "roc_auc"})
    table = compare_table([with_auc, no_auc])
    assert list(table.columns) == ["model", "balanced accuracy", "accuracy", "F1 (macro)"]  # main score first, named
    assert not table.isna().any().any()


def test_the_table_names_the_dataset_and_target_only_when_they_differ():
    a = model("ridge", "regression", "houses", "price", REG, fit_seconds=0.5, cpu_seconds=0.4, peak_rss_mb=80.0)
    b = model("ridge", "regression", "flats", "rent", REG, fit_seconds=0.7, cpu_seconds=0.6, peak_rss_mb=81.0)
    assert list(compare_table([a, b]).columns) == [
        "model",
        "dataset",
        "target",
        "R²",
        "MAE",
        "RMSE",
        "fit time (s)",
        "CPU time (s)",
        "peak memory (MB)",
    ]
    assert "dataset" not in compare_table([a]).columns


def test_the_any_dataset_group_names_each_model_with_its_data_and_scores_stay_its_own():
    """Two "gaussian_nb v1" on two datasets (both named sales.csv): each row of the comparison is one of
    them, under a name the other does not have, with its own score."""
    a = model("gaussian_nb", "classification", "sales_a", "bought", {**CLS, "balanced_accuracy": 0.61})
    b = model("gaussian_nb", "classification", "sales_b", "bought", {**CLS, "balanced_accuracy": 0.93})
    a.card["dataset"]["name"] = b.card["dataset"]["name"] = "sales.csv"
    groups = comparable_groups([a, b])
    assert len({g.label for g in groups}) == len(groups)  # the two sales.csv groups are told apart too
    every = groups[-1]
    assert every.any_dataset and every.members == (a, b)
    table = compare_table(list(every.members))
    assert table["model"].nunique() == 2 and table["dataset"].nunique() == 2
    assert dict(zip(table["model"], table["balanced accuracy"])) == {
        "gaussian_nb v1 · sales.csv (id sales_a) → bought": 0.61,
        "gaussian_nb v1 · sales.csv (id sales_b) → bought": 0.93,
    }
