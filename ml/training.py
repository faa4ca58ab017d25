"""Training data and pipelines as pure functions on DataFrames: prepare, split, folds, the preprocessing pipeline.

No files, no Temporal. The seed is always a parameter. Identifier columns: ml.identifiers; fitting: ml.fitting.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from core.datasets import looks_like_dates
from ml.bounds import TOO_MANY, TOO_MANY_TAIL, target_problem, too_few_rows
from ml.catalog import is_number
from ml.identifiers import is_id_like, numeric_id_reason, possible_id_reason
from ml.model_spec import ModelSpec
from ml.plain import shown

MAX_CATEGORIES = 50  # one-hot width per column: keeps a wide text column from exploding memory
DATE_PARTS = ("year", "month", "day", "dayofweek")


class DataError(ValueError):
    """The data cannot train the chosen model; the message says what to change."""


@dataclass(frozen=True)
class Prepared:
    X: pd.DataFrame
    y: pd.Series
    dropped_missing_target: int
    classes: int  # 0 for regression
    notes: tuple[str, ...] = ()  # what preparation did on its own, in plain words
    # numeric columns that are identifiers -> why (used as features only when the user included them)
    numeric_ids: dict[str, str] = field(default_factory=dict)
    id_note: str | None = None  # the note (one of `notes`) saying which numeric identifiers were left out
    # numeric columns that may be identifiers but are kept as features (weak evidence) -> why
    possible_ids: dict[str, str] = field(default_factory=dict)


def date_columns(X: pd.DataFrame) -> list[str]:
    """Columns of dates (core.datasets.looks_like_dates: the dataset's profile calls them dates too)."""
    return [c for c in X.columns if looks_like_dates(X[c])]


def prepare(df: pd.DataFrame, target: str, spec: ModelSpec, include: Collection[str] = ()) -> Prepared:
    """Separate features from the target, drop what cannot be learned from, refuse what cannot work.

    Identifier-like columns are left out of the features unless named in `include` (the user's choice)."""
    if target not in df.columns:
        raise DataError(f"The target column {shown(target)} is not in this dataset.")
    missing = df[target].isna()
    data = df.loc[~missing]
    y, X = data[target], data.drop(columns=[target])
    if missing.any() and y.dtype == object:
        # a column of true/false with gaps is read as objects; without its gaps it is booleans again (as objects,
        # scikit-learn cannot tell what kind of target it is)
        y = y.infer_objects()
    notes = []
    if missing.any():
        n = int(missing.sum())  # said before the launch (the data check) and after: in the present tense
        notes.append(
            f"{n:,} {'row' if n == 1 else 'rows'} without a value for {shown(target)} {'is' if n == 1 else 'are'} left out."
        )
    dates = date_columns(X)  # before the identifier check: a daily series has one date per row
    text_ids = [c for c in X.columns if c not in dates and c not in include and is_id_like(X[c])]
    numeric_ids = {c: why for c in X.columns if (why := numeric_id_reason(X[c], c)) is not None}
    possible_ids = {c: why for c in X.columns if c not in numeric_ids and (why := possible_id_reason(X[c], c)) is not None}
    left_out = [c for c in numeric_ids if c not in include]
    ids = text_ids + left_out
    leaks = [c for c in X.columns if c not in ids and X[c].equals(y)]
    if text_ids:
        notes.append(f"Identifier-like column(s) not used as features: {', '.join(text_ids)}.")
    id_note = None
    if left_out:
        id_note = (
            "Numeric identifier column(s) not used as features: " + "; ".join(f"{c} ({numeric_ids[c]})" for c in left_out) + "."
        )
        notes.append(id_note)
    if leaks:
        notes.append(f"Column(s) identical to the target not used (they would leak the answer): {', '.join(leaks)}.")
    X = X.drop(columns=ids + leaks)
    dates = [c for c in dates if c not in leaks]
    if dates:
        notes.append(f"Date column(s) {', '.join(dates)} turned into year, month, day and weekday features.")
    if X.shape[1] == 0:
        raise DataError("There are no usable feature columns besides the target.")
    if few := too_few_rows(len(data)):
        raise DataError(few)
    boolean = pd.api.types.is_bool_dtype(y)
    numeric, floating = pd.api.types.is_numeric_dtype(y) and not boolean, pd.api.types.is_float_dtype(y)
    classes = 0 if spec.task == "regression" else int(y.nunique())
    # a regression's check needs only whether its target holds one value or more
    values = (1 if numeric and y.min() == y.max() else 2) if spec.task == "regression" else classes
    problem = target_problem(spec, target, numeric=numeric, floating=floating, classes=values, rows=len(y))
    if problem:
        if problem.endswith(TOO_MANY):  # which values make a number column text, and what to do
            odd = [v for v in y.astype(str).unique()[:1000] if not is_number(v)][:3]
            problem += (f" (values that are not numbers: {', '.join(map(repr, odd))})" if odd else "") + TOO_MANY_TAIL
        raise DataError(problem)
    return Prepared(
        X=missing_as_nan(X),
        y=y,
        dropped_missing_target=int(missing.sum()),
        classes=classes,
        notes=tuple(notes),
        numeric_ids=numeric_ids,
        id_note=id_note,
        possible_ids=possible_ids,
    )


def split(prepared: Prepared, test_size: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the train and test sets."""
    positions = np.arange(len(prepared.y))
    n_test = int(np.ceil(test_size * len(positions)))
    classes = prepared.y.nunique()
    # stratify when every class can appear on both sides; otherwise a plain random split
    can_stratify = prepared.y.value_counts().min() >= 2 and classes <= min(n_test, len(positions) - n_test)
    strat = sorted_codes(prepared.y) if stratify and can_stratify else None
    try:
        train, test = train_test_split(positions, test_size=test_size, random_state=seed, stratify=strat)
    except ValueError as exc:
        raise DataError(f"The rows cannot be split into training and test sets: {exc}") from None
    return np.sort(train), np.sort(test)


def sorted_codes(y: pd.Series) -> np.ndarray | pd.Series:
    """The labels as their positions in sorted order: scikit-learn's stratified split sorts the labels
    (np.unique) to count the classes, which takes seconds for a million text labels; on these integers the
    same split comes out, row for row, in milliseconds. Labels that do not sort stay as they are."""
    categorical = pd.Categorical(y)
    labels = list(categorical.categories)
    try:
        in_order = labels == sorted(labels)
    except TypeError:  # labels of mixed kinds: no order to keep
        in_order = False
    return categorical.codes if in_order else y


def check_training_classes(prepared: Prepared, train: np.ndarray) -> None:
    """After the split, a classifier's training rows must hold every class, and at least two: a model never
    shown a class cannot predict it (and one class cannot be fitted at all). DataError otherwise."""
    present = set(prepared.y.iloc[train].unique())
    if len(present) < 2:
        only = shown(next(iter(present))) if present else "none"
        raise DataError(
            f"After the split, the training rows hold a single class ({only}); a classifier needs at least two. "
            "Add rows of the other classes, use a smaller test split, or pick another target."
        )
    missing = [c for c in prepared.y.unique() if c not in present]
    if missing:
        named = ", ".join(shown(c) for c in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise DataError(
            f"After the split, the training rows hold no row of class {named}: the model would never see it. "
            "Add rows of that class, remove its rows from the file, or pick another target."
        )


def folds(prepared: Prepared, k: int, seed: int, stratify: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    if k > len(prepared.y) // 2:
        raise DataError(
            f"{k}-fold cross-validation needs at least {2 * k} training rows; there are "
            f"{len(prepared.y)}. Use fewer folds or turn cross-validation off."
        )
    splitter = (StratifiedKFold if stratify and prepared.y.value_counts().min() >= k else KFold)(
        n_splits=k, shuffle=True, random_state=seed
    )
    return list(splitter.split(np.zeros(len(prepared.y)), prepared.y))


def normalise_columns(X: pd.DataFrame, dates: tuple[str, ...] = ()) -> pd.DataFrame:
    """Raw columns -> model inputs: dates expanded into parts, text as plain objects with NaN for missing.

    Only for models saved before pipelines were made of library parts alone: their files name this
    function as their first step, so it stays here, unchanged, for them to load and predict
    (tests/unit/test_persist.py loads such files). New pipelines do not use it (`make_pipeline`).
    """
    out = X.copy()
    for c in dates:
        if c in out.columns:
            parsed = pd.to_datetime(out[c], errors="coerce", format="mixed", utc=True)  # mixed offsets (DST)
            for part in DATE_PARTS:
                out[f"{c}__{part}"] = getattr(parsed.dt, part).astype("float64")
            out = out.drop(columns=[c])
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].astype(object).where(out[c].notna(), np.nan)
    return out


def missing_as_nan(X: pd.DataFrame) -> pd.DataFrame:
    """Object columns with NaN, never None, for missing values: Parquet gives back None (a boolean
    column with gaps), a CSV gives NaN, and the pipeline's imputer sees only NaN as missing."""
    fixed = {str(c): X[c].where(X[c].notna(), np.nan) for c in X.columns if X[c].dtype == object and X[c].isna().any()}
    return X.assign(**fixed) if fixed else X


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _numbers(*first: tuple[str, Any], scale: bool, impute: bool = True) -> Pipeline | str:
    """Numbers as the model takes them: missing ones filled with the column's median (unless the model takes
    NaN itself), then scaled if it needs it; "passthrough" when nothing is left to do."""
    steps = list(first)
    if impute:
        steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
    if scale:
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps) if steps else "passthrough"


def date_parts(index: int, column: str, scale: bool, impute: bool = True) -> tuple[str, Pipeline | str, str]:
    """One date column -> its year, month, day and weekday, from pandas and numpy functions only.

    The column is selected by a plain name, so the steps get it as a Series: parsed as `normalise_columns`
    did (mixed formats and offsets, in UTC, unparseable values missing), its parts read with
    `operator.attrgetter`, and stacked into four numeric columns."""
    parts = [f"dt.{part}" for part in DATE_PARTS]
    return (
        f"date_{index}",  # not the column's name: scikit-learn refuses step names holding "__"
        _numbers(
            ("parse", FunctionTransformer(pd.to_datetime, kw_args={"errors": "coerce", "format": "mixed", "utc": True})),
            ("parts", FunctionTransformer(attrgetter(*parts))),
            ("stack", FunctionTransformer(np.column_stack)),
            scale=scale,
            impute=impute,
        ),
        column,
    )


def build_preprocessor(X: pd.DataFrame, scale: bool, dates: tuple[str, ...] = (), impute: bool = True) -> ColumnTransformer:
    """Raw columns -> one numeric matrix, made of scikit-learn, pandas and numpy parts alone: a saved
    pipeline then loads wherever those libraries are installed, without TrainEasy.

    The columns come out in the order the earlier pipelines gave them (numbers, then each date's
    parts, then the one-hot text columns), so a model trained now equals one trained then. `impute=False`
    (a model that takes missing numbers itself) leaves numbers and date parts as they are, NaN included."""
    numeric = [c for c in X.columns if c not in dates and _is_numeric(X[c])]
    other = [c for c in X.columns if c not in dates and c not in numeric]
    categorical = Pipeline(
        [
            # booleans and text alike as plain objects: the imputer refuses a block of booleans
            ("as_objects", FunctionTransformer(np.asarray, kw_args={"dtype": object})),
            ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
            ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES)),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", _numbers(scale=scale, impute=impute), numeric),
            *(date_parts(i, c, scale, impute) for i, c in enumerate(dates)),
            ("categorical", categorical, other),
        ],
        sparse_threshold=0.0,
    )


def make_pipeline(spec: ModelSpec, params: dict, seed: int, X: pd.DataFrame) -> Pipeline:
    """The preprocessing and the model, taking the raw feature columns as they are uploaded."""
    dates = tuple(date_columns(X))
    return Pipeline(
        [
            ("preprocess", build_preprocessor(X, spec.needs_scaling, dates, impute=not spec.handles_missing)),
            ("model", spec.build(params, seed)),
        ]
    )
