"""The data check of a dataset and target before a launch: what will go wrong, be dropped, and cost."""

from __future__ import annotations

import math
from collections.abc import Collection

import pandas as pd

from ml.bounds import bound_errors
from ml.check_report import CheckFinding, CheckReport
from ml.identifiers import is_id_like
from ml.model_spec import Family, ModelSpec
from ml.plain import shown
from ml.training import MAX_CATEGORIES, DataError, date_columns, prepare

# Rough seconds per million (row x feature) cells for one default fit on one core of a small machine, per
# cost family (ModelSpec.family); multiplied by the model's own size parameter where it has one. An order
# of magnitude, not a promise. SVMs are quadratic in rows instead (see `estimate`).
_SECONDS_PER_MCELL: dict[Family, float] = {
    "linear": 0.3,
    "tree": 1.5,
    "forest": 25.0,
    "boosting": 15.0,
    "hist": 4.0,
    "knn": 0.5,
    "mlp": 40.0,
    "nb": 0.2,
}


# A fit's memory: its process with Python, numpy, pandas and scikit-learn loaded (a fit child's peak for a small
# linear model, on its model card: ~180 MB), the data as ~3 float copies (frame, encoded matrix, the estimator's
# own), and a forest's trees. A tree node is 64 bytes and 8 per value it holds (one per class; one in regression);
# a tree grows at most 2 nodes per distinct row its leaves may hold (min_samples_leaf) and 2**(depth+1) in all. A
# regression tree reaches that (its targets all differ); a classification tree stops at pure leaves first.
# Measured on 30,000 rows, from easy to noisy data and 2 to 5 classes: 5-43% of that bound with leaves of 1 row,
# 14-59% with leaves of 5; so 35% and 60% (a few times over on easy data, a little under on the noisiest). A
# 300-tree forest on 24,000 training rows of a noisy 2-class problem peaked at 441 MB: ~570 MB here (a fixed
# 0.0002 MB per tree and row said 1,864 MB for the 30,000 rows). Gradient boosting grows a regression tree per
# stage and class (one for two classes) to its depth.
_PROCESS_MB = 180.0
_NODE_BYTES = 64
_CLASSIFICATION_SHARE = 0.35  # of the bound, with leaves of 1 row
_CLASSIFICATION_SHARE_BIGGER_LEAVES = 0.6


def estimate(spec: ModelSpec, params: dict, rows: int, width: int, classes: int = 2) -> tuple[float, float]:
    """(seconds, MB) for training: rough, so the user can see a run will take an hour or its memory before
    starting it. `classes`: the target's classes (classification)."""
    family = spec.family
    cells = rows * max(width, 1) / 1e6
    if family == "svm":
        seconds = (rows / 1000) ** 2 * max(width, 1) * 0.002 * 5  # quadratic in rows; x5 for probability CV
    else:
        seconds = cells * _SECONDS_PER_MCELL[family]
    size = next((params[p.name] for p in spec.params if p.cost and p.name in params), 100)
    if family in ("forest", "boosting", "hist", "mlp"):
        seconds *= size / 100
    memory = _PROCESS_MB + rows * max(width, 1) * 8 * 3 / 2**20
    if family in ("forest", "boosting"):
        memory += size * _stage_bytes(spec, params, rows, classes) / 2**20
    return round(seconds, 1), round(memory, 0)


def _stage_bytes(spec: ModelSpec, params: dict, rows: int, classes: int) -> float:
    """One forest tree's size, or one boosting stage's (see above), at most."""
    leaf = max(params.get("min_samples_leaf") or 1, 1)
    nodes = 2.0 * rows / leaf
    if params.get("max_depth"):
        nodes = min(nodes, 2.0 ** (params["max_depth"] + 1))
    if spec.family == "boosting":  # a regression tree of the gradients per class (one for two classes)
        return nodes * (_NODE_BYTES + 8) * (classes if spec.task == "classification" and classes > 2 else 1)
    if spec.task != "classification":
        return nodes * (_NODE_BYTES + 8)
    share = _CLASSIFICATION_SHARE if leaf == 1 else _CLASSIFICATION_SHARE_BIGGER_LEAVES
    return nodes * share * (_NODE_BYTES + 8 * max(classes, 2))


def encoded_width(X: pd.DataFrame) -> int:
    """Columns after one-hot encoding (each text column counts its categories, up to the cap)."""
    return sum(1 if pd.api.types.is_numeric_dtype(X[c]) else min(X[c].nunique(), MAX_CATEGORIES) for c in X.columns)


def fit_estimate(
    spec: ModelSpec, params: dict | None, X: pd.DataFrame, classes: int = 2, test_size: float = 0.2
) -> tuple[float, float]:
    """`estimate` for these prepared features: the rows the fit sees (all but the test split's), their encoded width."""
    rows = len(X) - math.ceil(len(X) * test_size)  # scikit-learn's train_test_split rounds the test rows up
    return estimate(spec, spec.validate(params or {}), rows, encoded_width(X), classes)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"~{seconds / 60:.0f} min"
    return f"~{round(seconds / 3600, 1):g} h"


def over_budget(seconds: float, max_minutes: float | None, fits: int = 1) -> str | None:
    """The refusal of a run whose fits are estimated beyond the budget (TRAINEASY_MAX_FIT_MINUTES), or None.
    `fits`: how many fits the run makes of about this cost (k cross-validation folds + the final fit)."""
    total = seconds * max(fits, 1)
    if not max_minutes or total <= max_minutes * 60:
        return None
    what = (
        f"Estimated fit time {duration(total)} ({fits} fits: {fits - 1} cross-validation folds and the final "
        f"fit, {duration(seconds)} each)"
        if fits > 1
        else f"Estimated fit time {duration(total)}"
    )
    more = "fewer folds, " if fits > 1 else ""
    return f"{what} exceeds the {max_minutes:g}-minute budget; use {more}fewer rows or a faster model."


# The hard wall, whatever the estimate said (it ignores an MLP's width, an SVM's C...): a fit, or one
# cross-validation fold, still running after this many budgets is stopped and the run fails for good.
FIT_WALL_FACTOR = 2


def fit_wall_seconds(max_minutes: float | None) -> float | None:
    """Seconds one fit (or one fold) may run: FIT_WALL_FACTOR x TRAINEASY_MAX_FIT_MINUTES (None: no budget)."""
    return max_minutes * 60 * FIT_WALL_FACTOR if max_minutes else None


def over_wall(max_minutes: float, what: str = "The fit") -> str:
    return (
        f"{what} ran longer than {FIT_WALL_FACTOR} × the {max_minutes:g}-minute budget and was stopped; "
        "the estimate before launch was too low for these parameters. Use fewer rows, a smaller model "
        "(fewer trees, iterations or hidden units, a smaller C) or a faster one."
    )


def _id_findings(
    numeric_ids: dict[str, str], include: Collection[str], possible: dict[str, str] | None = None
) -> list[CheckFinding]:
    out = [
        CheckFinding(
            "warning",
            f"{shown(column)} may be an identifier ({why}); it is used as a feature. If it is a row, customer or "
            "order number rather than a measurement, remove it from the file: a model that learns from it would "
            "not carry over to new rows.",
        )
        for column, why in (possible or {}).items()
    ]
    for column, why in numeric_ids.items():
        if column in include:
            said = f"{shown(column)} looks like an identifier ({why}); it is used as a feature, as you chose."
            out.append(CheckFinding("info", said))
        else:
            out.append(
                CheckFinding(
                    "warning",
                    f"{shown(column)} looks like an identifier ({why}), so it is left out of the features: a model that "
                    "learns from it would not carry over to new rows. Keep it only if it really measures something.",
                )
            )
    return out


MAX_LISTED = 20  # columns named in one note on missing values; the rest are counted


def _missing_note(handled: str, columns: list[tuple[str, float]]) -> str:
    """One note for the columns with some missing values handled alike (not one box per column: a file with
    gaps in most columns filled the form with them), the most missing first."""
    if len(columns) == 1:
        (c, share), *_ = columns
        return f"{shown(c)} has {share:.1%} missing values ({handled})."
    ranked = sorted(columns, key=lambda item: -item[1])
    listed = ", ".join(f"{shown(c)} {share:.1%}" for c, share in ranked[:MAX_LISTED])
    more = f" and {len(ranked) - MAX_LISTED} more" if len(ranked) > MAX_LISTED else ""
    return f"{len(columns)} columns have missing values ({handled}): {listed}{more}."


def assess_data(
    df: pd.DataFrame,
    target: str,
    spec: ModelSpec,
    params: dict | None = None,
    cv_folds: int = 0,
    max_fit_minutes: float | None = None,
    test_size: float = 0.2,
    include: Collection[str] = (),
) -> CheckReport:
    """The data check of `df` and `target` for `spec` with `params`: what will go wrong, be dropped, and cost.

    `max_fit_minutes`: a run whose fits (each cross-validation fold and the final fit) are estimated to
    take longer is an error finding (the UI then offers no Start button; the load stage refuses it as well).
    Settings beyond a limit the data sets (ml/bounds.py: neighbours, folds, the test split...) are error
    findings too. `include`: identifier-like columns the user chose to keep as features."""
    findings: list[CheckFinding] = []
    if target not in df.columns:
        return CheckReport(len(df), 0, 0, [CheckFinding("error", f"The target column {shown(target)} is not in this dataset.")])
    try:
        prepared = prepare(df, target, spec, include)
    except DataError as exc:
        return CheckReport(len(df), int(df[target].notna().sum()), df.shape[1] - 1, [CheckFinding("error", str(exc))])
    findings += [CheckFinding("info", note) for note in prepared.notes if note != prepared.id_note]
    findings += _id_findings(prepared.numeric_ids, include, prepared.possible_ids)
    X, y = prepared.X, prepared.y
    classes = y.value_counts().to_dict() if spec.task == "classification" else None
    findings += [
        CheckFinding("error", e) for e in bound_errors(spec, spec.validate(params or {}), len(y), test_size, cv_folds, classes)
    ]
    dates = set(date_columns(X))  # parsed into parts, not one-hot: their many values are not categories
    gaps: dict[str, list[tuple[str, float]]] = {}  # how the missing values are handled -> (column, share) under half
    for c in X.columns:
        share = float(X[c].isna().mean())
        # text is always filled with its most frequent value; numbers and dates too, unless the model takes them missing
        number = pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
        by_model = spec.handles_missing and (c in dates or number)
        handled = "left to the model, which learns from them" if by_model else "imputed"
        if share > 0.5:
            findings.append(CheckFinding("warning", f"{shown(c)} is {share:.0%} missing ({handled}); it carries little."))
        elif share > 0:
            gaps.setdefault(handled, []).append((c, share))
        if X[c].nunique(dropna=True) <= 1:
            findings.append(CheckFinding("warning", f"{shown(c)} is constant: it carries no information."))
        elif (
            not pd.api.types.is_numeric_dtype(X[c])
            and c not in dates
            and X[c].nunique() > MAX_CATEGORIES
            and not is_id_like(X[c])
        ):
            findings.append(CheckFinding("info", f"{shown(c)} has {X[c].nunique()} categories; the rarest are grouped."))
    findings += [CheckFinding("info", _missing_note(handled, columns)) for handled, columns in gaps.items()]
    if spec.task == "classification":
        counts = y.value_counts()
        smallest = float(counts.min() / counts.sum())
        # a class the split can leave out of training (a single row...) is an error from bound_errors above
        if smallest < 0.1:
            findings.append(
                CheckFinding(
                    "warning",
                    f"Classes are imbalanced: {shown(counts.idxmin())} is only {smallest:.1%} of "
                    "rows. Watch balanced accuracy and F1 rather than accuracy.",
                )
            )
    elif y.nunique() <= 10:
        findings.append(
            CheckFinding("warning", f"The target has only {y.nunique()} distinct values: is this really a regression problem?")
        )
    classes = int(y.nunique()) if spec.task == "classification" else 1
    seconds, memory = fit_estimate(spec, params, X, classes, test_size)
    refusal = over_budget(seconds, max_fit_minutes, fits=cv_folds + 1 if cv_folds else 1)
    if refusal:
        findings.append(CheckFinding("error", refusal))
    return CheckReport(len(df), len(y), X.shape[1], findings, seconds, memory, list(prepared.numeric_ids))
