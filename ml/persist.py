"""Model files with skops: loading trusts only the exact types our catalog's pipelines are made of."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast
from zipfile import ZIP_STORED, BadZipFile, ZipFile

import skops
import skops.io as sio
from skops.io._audit import Node, get_tree  # skops is pinned; tests/unit/test_persist.py guards this use
from skops.io._utils import LoadContext, SaveContext, get_state, read_schema  # pinned too; test_persist.py checks write_model

from core.storage import write_atomic, write_atomic_with

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# Every type a saved catalog pipeline contains: scikit-learn, numpy and pandas parts and nothing of
# TrainEasy's own, so a downloaded file loads with skops alone. Nothing else loads: not another
# scikit-learn class, not another numpy function. tests/unit/test_persist.py rebuilds this set by
# fitting every catalog model; a new model or library upgrade that changes it fails that test until
# the set here is updated (after a look at what was added).
TRUSTED_TYPES = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.object",  # the dtype the text columns are read as (numpy.asarray's keyword)
        "builtins.str",
        "builtins.tuple",
        "numpy.asarray",
        "numpy.column_stack",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "numpy.uint64",
        "numpy.random._generator.Generator",
        "numpy.random.mtrand.RandomState",
        "operator.attrgetter",  # reads a parsed date's year, month, day and weekday
        "pandas.to_datetime",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.dummy.DummyClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.ExtraTreesRegressor",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.linear_model._coordinate_descent.Lasso",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._ridge.Ridge",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.naive_bayes.GaussianNB",
        "sklearn.neighbors._classification.KNeighborsClassifier",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._regression.KNeighborsRegressor",
        "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
        "sklearn.neural_network._multilayer_perceptron.MLPRegressor",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.preprocessing._label.LabelBinarizer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.svm._classes.SVC",
        "sklearn.svm._classes.SVR",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn.tree._tree.Tree",
    }
)

# Models saved before the pipelines were made of library parts alone name TrainEasy's own column step.
# They load here (and only here) as before; retrained, they load anywhere.
LEGACY_TYPES = frozenset({"ml.training.normalise_columns"})
LIBRARIES = ("builtins.", "numpy.", "operator.", "pandas.", "scipy.", "sklearn.")


class UntrustedModelFile(ValueError):
    """The file asks for types outside the allow-list; it is refused, not loaded."""


def save_model(pipeline: Pipeline, path: Path) -> None:
    """Write atomically, readable by this account only (a run's stages share the object in memory through
    orchestration/stage_cache.py, not here). Streamed into the file: its bytes are never held in memory whole (a
    100-tree forest's 20 MB, twice, and 20 ms to copy them)."""
    write_atomic_with(path, partial(write_model, pipeline))  # 0600 in 0700 folders, whatever the umask


def store_model(path: Path, trusted: Path, pipeline: Pipeline) -> None:
    """The model file at `path` and, in `trusted`, the types its card tells skops to trust (`skops_trusted`, JSON):
    what a fit's child stores (orchestration/fit_stage.py) for the run's next stages and the registry."""
    save_model(pipeline, path)
    write_atomic(trusted, json.dumps(skops_trusted(path)).encode())


def write_model(pipeline: Pipeline, fh: IO[bytes]) -> None:
    """`skops.io.dump(pipeline, fh)` with its schema.json written compact: the same file to every reader, written
    2.5-4x faster. skops indents that JSON, which sends `json.dumps` to its pure-Python encoder: most of a save's
    time (a small logistic regression 12 -> 3 ms, a 100-tree forest 177 -> 65 ms). These are the steps of skops'
    own `_save`; tests/unit/test_persist.py checks that both write the same members and schema."""
    with ZipFile(fh, "w", compression=ZIP_STORED) as zip_file:
        context = SaveContext(zip_file=zip_file)
        state = get_state(pipeline, context)
        context.clear_memo()
        state["protocol"] = context.protocol
        state["_skops_version"] = skops.__version__
        zip_file.writestr("schema.json", json.dumps(state))


def load_model(path: Path) -> Pipeline:
    """Load a model file whose every type is in TRUSTED_TYPES (or LEGACY_TYPES); refuse anything else."""
    return load_model_bytes(path.read_bytes())


def load_model_bytes(data: bytes) -> Pipeline:
    """The same check and load on the bytes themselves (read once: nothing swaps the file in between)."""
    used = types_in(data)
    refused = sorted(used - TRUSTED_TYPES - LEGACY_TYPES)
    if refused:
        raise UntrustedModelFile(f"model file uses untrusted types: {', '.join(refused[:5])}")
    try:
        return sio.loads(data, trusted=sorted(used))
    except BadZipFile as exc:  # an array's bytes are first read here (`types_in` reads none): one is corrupt
        raise _unreadable(exc) from None


def skops_trusted(model: bytes | Path) -> list[str] | None:
    """The types to pass to `skops.io.load(..., trusted=...)` for this model file (its bytes, or its path: then
    only its schema is read) outside TrainEasy (skops trusts the rest by default), or None when the file needs
    TrainEasy's own code to load. What `skops.io.get_untrusted_types` says, without reading the arrays (`_Unread`)."""
    with ZipFile(io.BytesIO(model) if isinstance(model, bytes) else model) as zf:
        schema, context = _audited(zf)
        needed = sorted(get_tree(schema, context, trusted=None).get_unsafe_set())
    return needed if all(t.startswith(LIBRARIES) for t in needed) else None


def types_in(data: bytes) -> set[str]:
    """Every type a skops file would build, including those skops itself trusts by default (all of
    scikit-learn's estimators): our list is narrower than skops' default."""
    try:
        with ZipFile(io.BytesIO(data)) as zf:
            schema, context = _audited(zf)
            tree = get_tree(schema, context, trusted=None)
    except (BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise _unreadable(exc) from None
    _distrust_all([tree, *context.memo.values()])
    return tree.get_unsafe_set()


def _unreadable(exc: Exception) -> UntrustedModelFile:
    """A file that is not a whole skops file is refused as a model file, not with the zip reader's own error."""
    return UntrustedModelFile(f"not a readable model file: {exc}")


def _audited(zf: ZipFile) -> tuple[dict[str, Any], LoadContext]:
    """The file's schema, and the context its audit tree is built in: one that reads no array (`_Unread`)."""
    schema, context = read_schema(zf)
    return schema, replace(context, src=cast(ZipFile, _Unread(zf)))


class _Unread:
    """The zip file as skops' audit tree reads it, minus the arrays' bytes: a node holds its array's bytes (a
    100-tree forest's 25 MB, half the time of its audit) but its type is in the schema; a member the schema
    names must still be there (KeyError, as from the zip file)."""

    def __init__(self, zf: ZipFile) -> None:
        self.zf = zf

    def read(self, name: str) -> bytes:
        self.zf.getinfo(name)
        return b""


def _distrust_all(roots: list[object]) -> None:
    """Empty the trusted list of every node, so that get_unsafe_set names every type in the tree."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Node):
            node.trusted = []
            stack.extend(node.children.values())
            stack.append(getattr(node, "cached", None))  # a cached node points at a node built earlier
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
