"""Form inputs for a model's parameters, from its schema (ml/catalog.py), with the allowed range in the label.

The inputs themselves take any number: Streamlit keeps the previous value, silently, when one is typed
beyond a widget's own bounds, so the bounds are checked here instead, where the page can say what is wrong
and keep Start disabled.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ml.model_spec import ModelSpec, Param, ParamError
from ui.text import md


def allowed(p: Param) -> str:
    """The range a numeric parameter takes, in words: "1 to 500", "1 to 50, 0 = unlimited"."""
    if p.min is None or p.max is None:
        return ""
    text = f"{p.min:g} to {p.max:g}"
    return f"{text}, 0 = {p.none_label}" if p.none_label else text


def param_input(p: Param, where: Any, key: str) -> Any:
    """One parameter's input: a choice box, or a number input labelled with its range."""
    if p.type == "choice":
        return where.selectbox(p.name, p.choices, index=p.choices.index(p.default), help=p.help, key=key)
    label = f"{p.name} ({allowed(p)})"
    if p.type == "int":
        return int(where.number_input(label, value=int(p.default), step=1, help=p.help, key=key))
    step = max(p.default / 10, 1e-6) if p.log else 0.01
    return float(where.number_input(label, value=float(p.default), step=step, help=p.help, key=key, format="%g"))


def param_form(spec: ModelSpec, key_prefix: str) -> tuple[dict[str, Any], str | None]:
    """The model's parameter inputs in a grid: (values, the first problem with them or None)."""
    grid = st.columns(3)
    params = {p.name: param_input(p, grid[i % 3], f"{key_prefix}_{spec.key}_{p.name}") for i, p in enumerate(spec.params)}
    if not spec.params:
        st.caption("This model has no parameters to tune.")
    try:
        spec.validate(params)
    except ParamError as exc:
        message = str(exc)
        st.error(f"{md(message[0].upper() + message[1:])}. Change it to start the run.")
        return params, message
    return params, None
