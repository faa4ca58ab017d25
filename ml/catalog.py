"""The model catalog: every model with its typed, bounded parameter schema, in one place (the types: ml/model_spec.py).

Importing this module does not import scikit-learn, so the UI can build forms from it cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.datasets import ColumnProfile

from ml.model_spec import ModelSpec, Param, ParamError, RowBound, Task

# --- Bounds that depend on the data --------------------------------------------------------------
# Every parameter below was reviewed for a limit the data sets; "one fit" sees the rows with a target,
# less the test rows, less the largest cross-validation fold (ml/bounds.py does the arithmetic, and
# also checks the split itself: rows on each side, classes in training, folds vs rows and class counts).
#   n_neighbors (k-NN)                 at most the rows one fit sees (scikit-learn fails at predict time)
#   min_samples_leaf (trees)           at most half those rows (beyond it no split: one constant leaf)
#   min_samples_leaf (random forests)  at most ~0.32 of them: each tree's bootstrap sample holds about
#                                      63% (1 - 1/e) of the distinct rows, and leaves count distinct rows
#   histogram gradient boosting        its fixed min_samples_leaf=20 needs 40 rows per fit to split
# No limit from the data: C, alpha, max_iter, n_estimators, learning_rate(_init), max_depth and
# max_leaf_nodes (growth just stops earlier), subsample (scikit-learn draws at least one row),
# max_features (a share of the features, at least one), l2_regularization, kernel, gamma, weights,
# criterion, hidden_units, hidden_layers, var_smoothing. The MLP's batch size is not a parameter here:
# scikit-learn's "auto" takes min(200, rows), so it never exceeds the rows.
_LEAF_BOUND = RowBound(
    2, "a split makes two leaves of at least that many rows, so the tree could not split and would predict one value"
)
_BOOTSTRAP_LEAF_BOUND = RowBound(
    3.2,
    "each tree learns from a bootstrap sample holding about 63% of the distinct rows, and a split makes two "
    "leaves of at least that many rows, so the trees could not split and would predict one value",
)
_NEIGHBOURS_BOUND = RowBound(1, "k-NN looks for that many neighbours among the rows it was fitted on")


def _trees(default_features: Any, bootstrap: bool) -> tuple[Param, ...]:
    return (
        Param("n_estimators", "int", 100, "Number of trees. More trees: steadier results, slower training.", 1, 500, cost=True),
        Param("max_depth", "int", 0, "Deepest a tree may grow (0 = unlimited).", 1, 50, none_label="unlimited", memory=True),
        Param(
            "min_samples_leaf",
            "int",
            1,
            "Fewest samples allowed in a leaf; higher values smooth the model.",
            1,
            1000,
            row_bound=_BOOTSTRAP_LEAF_BOUND if bootstrap else _LEAF_BOUND,
        ),
        Param(
            "max_features",
            "choice",
            default_features,
            "Share of features considered at each split.",
            choices=tuple(dict.fromkeys((default_features, "sqrt", "log2", 1.0))),
        ),
    )


_TREE = (
    Param("max_depth", "int", 0, "Deepest the tree may grow (0 = unlimited).", 1, 50, none_label="unlimited"),
    Param("min_samples_leaf", "int", 1, "Fewest samples allowed in a leaf.", 1, 1000, row_bound=_LEAF_BOUND),
)
_GB = (
    Param("n_estimators", "int", 100, "Boosting stages.", 1, 1000, cost=True),
    Param("learning_rate", "float", 0.1, "Shrinks each stage's contribution.", 0.001, 1.0, log=True),
    Param("max_depth", "int", 3, "Depth of each tree.", 1, 10, memory=True),
    Param("subsample", "float", 1.0, "Share of rows per stage (<1 is stochastic boosting).", 0.1, 1.0),
)
_HGB = (
    Param("max_iter", "int", 100, "Boosting iterations.", 1, 1000, cost=True),
    Param("learning_rate", "float", 0.1, "Shrinks each iteration's contribution.", 0.001, 1.0, log=True),
    Param("max_leaf_nodes", "int", 31, "Leaves per tree.", 2, 256),
    Param("l2_regularization", "float", 0.0, "L2 penalty on leaf values.", 0.0, 100.0),
)
_SVM = (
    Param("C", "float", 1.0, "Penalty of errors: larger fits the training data more closely.", 1e-3, 1e3, log=True),
    Param("kernel", "choice", "rbf", "Shape of the decision function.", choices=("rbf", "linear", "poly")),
    Param("gamma", "choice", "scale", "Kernel coefficient.", choices=("scale", "auto")),
)
_KNN = (
    Param("n_neighbors", "int", 5, "Neighbours that vote.", 1, 100, row_bound=_NEIGHBOURS_BOUND),
    Param("weights", "choice", "uniform", "Weigh neighbours equally or by closeness.", choices=("uniform", "distance")),
)
_MLP = (
    Param("hidden_units", "int", 64, "Neurons per hidden layer.", 1, 512),
    Param("hidden_layers", "int", 1, "Hidden layers.", 1, 4),
    Param("alpha", "float", 1e-4, "L2 penalty.", 1e-6, 10.0, log=True),
    Param("learning_rate_init", "float", 1e-3, "Initial step size of the optimiser.", 1e-5, 1.0, log=True),
    Param("max_iter", "int", 200, "Most training epochs.", 5, 2000, cost=True),
)
# scikit-learn's own min_samples_leaf=20 for histogram gradient boosting: fewer than 2 x 20 rows cannot split
_HGB_ROWS: dict[str, Any] = {
    "min_fit_rows": 40,
    "min_fit_rows_reason": "it keeps at least 20 rows in each leaf, so with fewer it could not split and would predict one value",
}
_ALPHA = (Param("alpha", "float", 1.0, "Regularisation strength.", 1e-6, 1e4, log=True),)


def _mlp_kwargs(p: dict[str, Any]) -> dict[str, Any]:
    p = dict(p)
    p["hidden_layer_sizes"] = (p.pop("hidden_units"),) * p.pop("hidden_layers")
    return p


_SPECS = (
    # classification
    ModelSpec(
        "logistic_regression",
        "Logistic regression",
        "classification",
        "sklearn.linear_model.LogisticRegression",
        (
            Param("C", "float", 1.0, "Inverse regularisation strength: smaller values regularise more.", 1e-4, 1e4, log=True),
            Param("max_iter", "int", 500, "Most solver iterations.", 10, 10_000),
        ),
        needs_scaling=True,
        family="linear",
    ),
    ModelSpec(
        "decision_tree_classifier",
        "Decision tree (classification)",
        "classification",
        "sklearn.tree.DecisionTreeClassifier",
        _TREE + (Param("criterion", "choice", "gini", "Split quality measure.", choices=("gini", "entropy", "log_loss")),),
        family="tree",
    ),
    ModelSpec(
        "random_forest_classifier",
        "Random forest (classification)",
        "classification",
        "sklearn.ensemble.RandomForestClassifier",
        _trees("sqrt", bootstrap=True),
        increments="n_estimators",
        fixed={"n_jobs": 1},
        family="forest",
    ),
    ModelSpec(
        "extra_trees_classifier",
        "Extra trees (classification)",
        "classification",
        "sklearn.ensemble.ExtraTreesClassifier",
        _trees("sqrt", bootstrap=False),
        increments="n_estimators",
        fixed={"n_jobs": 1},
        family="forest",
    ),
    ModelSpec(
        "gradient_boosting_classifier",
        "Gradient boosting (classification)",
        "classification",
        "sklearn.ensemble.GradientBoostingClassifier",
        _GB,
        increments="n_estimators",
        family="boosting",
    ),
    ModelSpec(
        "hist_gradient_boosting_classifier",
        "Histogram gradient boosting (classification)",
        "classification",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        _HGB,
        increments="max_iter",
        fixed={"early_stopping": False},
        **_HGB_ROWS,
        family="hist",
        handles_missing=True,
    ),
    ModelSpec(
        "svm_classifier",
        "Support vector machine (classification)",
        "classification",
        "sklearn.svm.SVC",
        _SVM,
        needs_scaling=True,
        family="svm",
    ),
    ModelSpec(
        "knn_classifier",
        "k-nearest neighbours (classification)",
        "classification",
        "sklearn.neighbors.KNeighborsClassifier",
        _KNN,
        needs_scaling=True,
        seeded=False,
        family="knn",
    ),
    ModelSpec(
        "mlp_classifier",
        "Neural network / MLP (classification)",
        "classification",
        "sklearn.neural_network.MLPClassifier",
        _MLP,
        needs_scaling=True,
        adapt=_mlp_kwargs,
        family="mlp",
    ),
    ModelSpec(
        "gaussian_nb",
        "Gaussian naive Bayes",
        "classification",
        "sklearn.naive_bayes.GaussianNB",
        (Param("var_smoothing", "float", 1e-9, "Added variance for stability.", 1e-12, 1.0, log=True),),
        seeded=False,
        family="nb",
    ),
    # regression
    ModelSpec(
        "linear_regression",
        "Linear regression",
        "regression",
        "sklearn.linear_model.LinearRegression",
        (),
        needs_scaling=True,
        seeded=False,
        family="linear",
    ),
    ModelSpec(
        "ridge",
        "Ridge regression",
        "regression",
        "sklearn.linear_model.Ridge",
        _ALPHA,
        needs_scaling=True,
        seeded=False,
        family="linear",
    ),
    ModelSpec(
        "lasso",
        "Lasso regression",
        "regression",
        "sklearn.linear_model.Lasso",
        _ALPHA + (Param("max_iter", "int", 1000, "Most coordinate-descent iterations.", 10, 100_000),),
        needs_scaling=True,
        family="linear",
    ),
    ModelSpec(
        "decision_tree_regressor",
        "Decision tree (regression)",
        "regression",
        "sklearn.tree.DecisionTreeRegressor",
        _TREE,
        family="tree",
    ),
    ModelSpec(
        "random_forest_regressor",
        "Random forest (regression)",
        "regression",
        "sklearn.ensemble.RandomForestRegressor",
        _trees(1.0, bootstrap=True),
        increments="n_estimators",
        fixed={"n_jobs": 1},
        family="forest",
    ),
    ModelSpec(
        "extra_trees_regressor",
        "Extra trees (regression)",
        "regression",
        "sklearn.ensemble.ExtraTreesRegressor",
        _trees(1.0, bootstrap=False),
        increments="n_estimators",
        fixed={"n_jobs": 1},
        family="forest",
    ),
    ModelSpec(
        "hist_gradient_boosting_regressor",
        "Histogram gradient boosting (regression)",
        "regression",
        "sklearn.ensemble.HistGradientBoostingRegressor",
        _HGB,
        increments="max_iter",
        fixed={"early_stopping": False},
        **_HGB_ROWS,
        family="hist",
        handles_missing=True,
    ),
    ModelSpec(
        "svr", "Support vector regression", "regression", "sklearn.svm.SVR", _SVM, needs_scaling=True, seeded=False, family="svm"
    ),
    ModelSpec(
        "knn_regressor",
        "k-nearest neighbours (regression)",
        "regression",
        "sklearn.neighbors.KNeighborsRegressor",
        _KNN,
        needs_scaling=True,
        seeded=False,
        family="knn",
    ),
    ModelSpec(
        "mlp_regressor",
        "Neural network / MLP (regression)",
        "regression",
        "sklearn.neural_network.MLPRegressor",
        _MLP,
        needs_scaling=True,
        adapt=_mlp_kwargs,
        family="mlp",
    ),
)
MODELS: dict[str, ModelSpec] = {m.key: m for m in _SPECS}


def is_number(text: str) -> bool:
    """Whether a piece of user text reads as a number (for forms and data messages)."""
    try:
        float(text)
        return True
    except ValueError:
        return False


def guess_task(column: ColumnProfile) -> Task:
    """The task a target column suggests (the launch forms let the user change it): many distinct numbers
    are a quantity to predict, anything else is a class."""
    return "regression" if column.kind == "numeric" and column.unique > 20 else "classification"


def get_model(key: str) -> ModelSpec:
    try:
        return MODELS[key]
    except KeyError:
        raise ParamError(f"unknown model {key!r}; choose one of {', '.join(MODELS)}") from None


def models_for(task: Task) -> list[ModelSpec]:
    return [m for m in MODELS.values() if m.task == task]
