"""ml.sweep: a sweep never trains the same configuration twice; a space smaller than the budget gives
every configuration it holds, once."""

from __future__ import annotations

from ml.catalog import MODELS
from ml.sweep import grid, random_search

KNN = MODELS["knn_classifier"]


def test_a_random_search_over_a_small_space_gives_each_configuration_once():
    trials = random_search(KNN, {"n_neighbors": (3, 5)}, budget=12, seed=42)
    assert sorted(t["n_neighbors"] for t in trials) == [3, 4, 5]  # 3 distinct, not 12 with repeats
    assert trials == random_search(KNN, {"n_neighbors": (3, 5)}, budget=12, seed=42)  # deterministic


def test_a_random_search_over_a_large_space_fills_its_budget_with_distinct_trials():
    forest = MODELS["random_forest_classifier"]
    trials = random_search(forest, {"n_estimators": (10, 500), "max_depth": (1, 30)}, budget=20, seed=1)
    assert len(trials) == 20 and len({repr(sorted(t.items())) for t in trials}) == 20


def test_a_grid_with_a_value_listed_twice_trains_it_once():
    trials = grid(KNN, {"n_neighbors": [3, 3, 4], "weights": ["uniform"]}, budget=10)
    assert [t["n_neighbors"] for t in trials] == [3, 4]
