"""Telling identifier columns (row counters, codes, keys) from features, by their values and their names."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

MIN_ID_ROWS = 20  # on fewer rows, every column looks unique
# Words that name an identifier: anywhere in a column's name ("id_customer") or as its last word ("order_no")
_ID_WORDS_ANYWHERE = frozenset({"id", "ids", "uuid", "guid"})
_ID_WORDS_LAST = frozenset({"key", "code", "number", "no", "num", "nr", "ref", "index", "idx"})
YEARS = (1800, 2100)  # consecutive whole numbers in this range are years (a yearly series), not a row counter


def is_id_like(s: pd.Series) -> bool:
    """A text column with (almost) one distinct value per row: an identifier, not a feature."""
    n = int(s.notna().sum())
    return n >= MIN_ID_ROWS and not pd.api.types.is_numeric_dtype(s) and s.nunique(dropna=True) >= 0.95 * n


def id_like_name(name: object) -> bool:
    """A column name that says identifier: id, customer_id, customerId, CustomerID, uuid, order_no, zip_code,
    product_key, row_number... (not number_of_rooms: the last word names what is counted)."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name))  # customerId -> customer_Id
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)  # IDNumber -> ID_Number
    words = [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]
    return bool(words) and (any(w in _ID_WORDS_ANYWHERE for w in words) or words[-1] in _ID_WORDS_LAST)


def _whole_numbers(s: pd.Series) -> np.ndarray | None:
    """The present values of a numeric column if they are all finite whole numbers (ints, or floats such as
    100034.0), else None. Booleans and text are not numbers here."""
    if pd.api.types.is_bool_dtype(s) or not (pd.api.types.is_integer_dtype(s) or pd.api.types.is_float_dtype(s)):
        return None
    values = s.dropna().to_numpy(dtype="float64")
    if not len(values) or not np.isfinite(values).all() or not (values == np.floor(values)).all():
        return None
    return values


def _years(values: np.ndarray) -> bool:
    return bool(YEARS[0] <= values.min() and values.max() <= YEARS[1])


def numeric_id_reason(s: pd.Series, name: object = None) -> str | None:
    """Why a numeric column is an identifier (left out of the features by default), or None. Strong evidence
    only: a name that says identifier (`id_like_name`) over a different whole number in every row (ints or
    whole floats), or a row counter: consecutive whole numbers in row order (step 1, from anywhere) over at
    least MIN_ID_ROWS rows that are not a range of years. Counters are integer columns, or floats with gaps
    (pandas reads integers with gaps as floats): whole floats without gaps are measurements."""
    values = _whole_numbers(s)
    if values is None or len(values) < 2:
        return None
    name = s.name if name is None else name
    if id_like_name(name) and len(np.unique(values)) == len(values):
        return "its name says identifier and every row has a different whole number"
    counter_type = pd.api.types.is_integer_dtype(s) or bool(s.isna().any())
    steps = np.diff(values)
    if counter_type and len(values) >= MIN_ID_ROWS and ((steps == 1).all() or (steps == -1).all()) and not _years(values):
        return "it counts one by one from row to row, like a row number"
    return None


def possible_id_reason(s: pd.Series, name: object = None) -> str | None:
    """Why a numeric column might be an identifier though nothing else says so (kept as a feature, with a
    warning), or None: a different integer in every row, over at least MIN_ID_ROWS rows, not years.
    Many measurements look like this on small files (a house's area in square feet)."""
    values = _whole_numbers(s)
    if values is None or numeric_id_reason(s, name) is not None:
        return None
    integers = pd.api.types.is_integer_dtype(s) or bool(s.isna().any())
    if integers and len(values) >= MIN_ID_ROWS and len(np.unique(values)) == len(values) and not _years(values):
        return "every row has a different whole number"
    return None
