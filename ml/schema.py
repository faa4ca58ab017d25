"""A model's input schema: the columns it was trained on, and new data conformed to them before predicting."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ml.plain import shown


class SchemaError(ValueError):
    """The data cannot be conformed to the model's schema; the message says what the user must change."""


def input_schema(X: pd.DataFrame) -> list[dict[str, Any]]:
    """The raw columns a model expects, with the categories it saw (for unseen-category reports)."""
    schema = []
    for c in X.columns:
        numeric = pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
        entry: dict[str, Any] = {"name": str(c), "kind": "numeric" if numeric else "categorical", "dtype": str(X[c].dtype)}
        if not numeric:
            entry["categories"] = sorted(map(str, X[c].dropna().unique()))[:1000]
        schema.append(entry)
    return schema


def conform(df: pd.DataFrame, schema: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[str]]:
    """The upload's columns checked against the training schema: (features, notes), or SchemaError."""
    names = [c["name"] for c in schema]
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise SchemaError(
            f"The file lacks column(s) the model needs: {', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}."
        )
    notes = []
    extra = [c for c in df.columns if c not in names]
    if extra:
        notes.append(f"Ignored column(s) the model does not use: {', '.join(map(str, extra[:10]))}.")
    X = df[names].copy()
    for col in schema:
        name = col["name"]
        if col["kind"] == "numeric" and not pd.api.types.is_numeric_dtype(X[name]):
            converted = pd.to_numeric(X[name], errors="coerce")
            bad = int((converted.isna() & X[name].notna()).sum())
            if bad:
                notes.append(f"{shown(name)}: {bad} non-numeric value(s) treated as missing.")
            X[name] = converted
        elif col["kind"] == "categorical":
            unseen = sorted(set(X[name].dropna().astype(str)) - set(col.get("categories", [])))
            if unseen and len(col.get("categories", [])) < 1000:
                listed = ", ".join(shown(v) for v in unseen[:5])
                notes.append(
                    f"{shown(name)}: {len(unseen)} value(s) never seen in training ({listed}"
                    f"{' …' if len(unseen) > 5 else ''}); treated as unknown."
                )
    return X, notes
