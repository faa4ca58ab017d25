"""What pages do while Temporal cannot be reached: launch controls disabled with a short reason (the banner
says the rest, once), and runs and batches answered at once from what this process last read of them, marked
once with when that was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from orchestration.engine_watch import EngineState
from orchestration.errors import NotFound
from orchestration.known_views import Known
from ui.runtime import guard
from ui.sync_service import SyncService, Unavailable

T = TypeVar("T")


def blocked_reason(state: EngineState) -> str | None:
    """The short reason under a control that needs Temporal (None: it is up). The banner says since when and
    what still works; this says only why the control is off and, if no restart will come, who must act."""
    if state.up:
        return None
    if state.given_up:
        return "Needs Temporal, which is down until an admin restarts the stack (`make run`)."
    return "Needs Temporal, which is not reachable right now."


def launch_blocked(svc: SyncService) -> str | None:
    """Why launching is disabled right now (None: it is not)."""
    return blocked_reason(svc.engine())


def show_blocked(reason: str | None) -> None:
    """The reason under a disabled control (a tooltip alone is not seen)."""
    if reason:
        st.caption(f":material/cloud_off: {reason}")


def as_of_text(known: Known[Any]) -> str:
    """Where an answer given during an outage comes from, and from when: one short line (the banner says
    that Temporal is not reachable)."""
    if known.final:
        when = f", registered {known.as_of:%H:%M:%S} UTC" if known.as_of else ""
        return f"From the model registry (the run finished{when})."
    if known.as_of is None:
        return "From the model registry: your runs that registered a model."
    return f"As of {known.as_of:%H:%M:%S} UTC."


def fetch_known(what: str, load: Callable[[], T], recall: Callable[[], Known[T] | None]) -> tuple[T, Known[T] | None] | None:
    """(value, None) from `load()`; while Temporal cannot be reached, (value, how it is known) from `recall()`
    at once; None after saying why there is nothing to show (not found, or never read here)."""
    with guard(f"Reading the {what}"):
        try:
            return load(), None
        except NotFound:
            st.error(f"{what.capitalize()} not found. It may belong to another user, or the link is wrong.")
            return None
        except Unavailable:
            found = recall()
            if found is None:
                st.info(f"This {what} was not read by this app before: it is shown once Temporal is back.")
                return None
            return found.value, found
    return None
