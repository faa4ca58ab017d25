"""Values as a user reads them in a sentence: numpy scalars as the plain numbers they hold, text quoted."""

from __future__ import annotations

from typing import Any


def shown(value: Any) -> str:
    """`'yes'` for text, `1` for a numpy 1 (never `np.int64(1)`), `2.5`, `True`: what a label looks like
    in the user's file."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            value = item()
        except (TypeError, ValueError):
            pass
    return repr(str(value)) if isinstance(value, str) else str(value)  # str(): numpy's str_ has its own repr
