"""Deleting a dataset from the Datasets page: what depends on it first, then confirm or cancel."""

from __future__ import annotations

import streamlit as st

from core.accounts import User
from core.datasets import DatasetInfo
from orchestration.dataset_calls import DatasetDependents
from ui.labels import when
from ui.outage import launch_blocked, show_blocked
from ui.retention import kb
from ui.runtime import guard
from ui.sync_service import SyncService
from ui.text import md

PENDING = "dataset_delete"  # session state: the dependents on screen, until confirmed or cancelled
DONE = "dataset_deleted"  # session state: the message after a delete, shown once after the rerun
CHOICES = ("dataset_choice", "train_dataset", "batch_dataset")  # selections that may point at the deleted one


def show_deleted_message() -> None:
    """The outcome of the last delete, once (the page reran since)."""
    done = st.session_state.pop(DONE, None)
    if done:
        st.success(done)


def delete_section(svc: SyncService, user: User, dataset: DatasetInfo, shown_here: bool = False) -> None:
    """`shown_here`: the page already shows why Temporal's controls are off (the button keeps it as a tooltip)."""
    st.subheader("Delete this dataset")
    pending: DatasetDependents | None = st.session_state.get(PENDING)
    if pending is None or pending.dataset.dataset_id != dataset.dataset_id:
        blocked = launch_blocked(svc)  # which runs use it is asked of Temporal
        if not shown_here:
            show_blocked(blocked)
        if st.button(f"Delete {md(dataset.name)}…", key="dataset_delete_start", disabled=bool(blocked), help=blocked):
            with guard("Checking what uses this dataset"):
                st.session_state[PENDING] = svc.dataset_dependents(user, dataset.dataset_id)
                st.rerun()
        return
    _dependents(pending)
    confirm, cancel = st.columns(2)
    if pending.can_delete:
        if confirm.button(f"Delete {md(dataset.name)}", type="primary", key="dataset_delete_confirm"):
            st.session_state.pop(PENDING, None)
            with guard("Deleting the dataset"):
                gone = svc.delete_dataset(user, dataset.dataset_id)
                for key in CHOICES:
                    if st.session_state.get(key) == gone.dataset_id:
                        st.session_state.pop(key, None)
                usage = svc.usage(user)
                st.session_state[DONE] = (
                    f"Deleted {md(gone.name)}; {kb(gone.freed_bytes)} freed. You now store "
                    f"{kb(usage.stored_bytes)} of your {kb(usage.limits.max_stored_bytes)}."
                )
                st.rerun()
    elif confirm.button("Check again", key="dataset_delete_recheck"):
        with guard("Checking what uses this dataset"):
            st.session_state[PENDING] = svc.dataset_dependents(user, dataset.dataset_id)
            st.rerun()
    if cancel.button("Cancel, keep it", key="dataset_delete_cancel"):
        st.session_state.pop(PENDING, None)
        st.rerun()


def _dependents(pending: DatasetDependents) -> None:
    if pending.runs_in_flight:
        st.error(
            f"{len(pending.runs_in_flight)} run(s) on this dataset are still in flight, so it cannot be deleted now. "
            "Wait for them to finish or cancel them, then check again."
        )
        st.table([{"run or batch": r} for r in pending.runs_in_flight], hide_index=True)
    if pending.models:
        st.info(
            f"{len(pending.models)} model(s) were trained on this dataset. They stay, and still load, download "
            "and predict: a model needs only its own files."
        )
        st.table(  # Markdown in cells: the user's names are escaped
            [
                {"model": md(m.label), "target": md(m.target), "registered": when(m.created_at), "tags": md(", ".join(m.tags))}
                for m in pending.models
            ],
            hide_index=True,
        )
    else:
        st.info("No model was trained on this dataset.")
    if pending.can_delete:
        st.warning(
            f"Deleting removes {md(pending.dataset.name)} and its stored copy ({kb(pending.dataset.size_bytes)} "
            "uploaded). This cannot be undone."
        )
