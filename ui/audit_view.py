"""The audit log on the Admin page: filters, the newest entries, a formula-safe CSV export, a chain check."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from core.accounts import User
from core.audit import OUTCOMES, AuditEntry
from orchestration.audit_service import AuditService
from ui.text import md

SHOWN = 500  # rows in the table; the export takes up to EXPORTED
EXPORTED = 100_000
ANYONE, ANY = "(anyone)", "(any)"


def _filters(audits: AuditService, admin: User) -> dict[str, Any]:
    who, action, outcome, days = st.columns([2, 2, 1, 2])
    actor = who.selectbox("User", [ANYONE, *audits.actors(admin)], key="audit_actor")
    prefix = action.text_input("Action starts with", key="audit_action", placeholder="login, admin., launch")
    result = outcome.selectbox("Outcome", [ANY, *OUTCOMES], key="audit_outcome")
    today = datetime.now(UTC).date()
    picked = days.date_input("Dates (UTC)", (today - timedelta(days=30), today), max_value=today, key="audit_dates")
    start, end = _date_range(picked)
    return {
        "actor": None if actor == ANYONE else actor,
        "action_prefix": prefix.strip() or None,
        "outcome": None if result == ANY else result,
        "since": start,
        "until": end + timedelta(days=1) if end else None,
    }  # the end day is included


def _date_range(picked: date | Sequence[date] | None) -> tuple[date | None, date | None]:
    """date_input gives a tuple of 0, 1 (while the second date is being picked) or 2 dates."""
    if isinstance(picked, date):
        return picked, picked
    picked = tuple(picked or ())
    if not picked:
        return None, None
    return picked[0], picked[-1] if len(picked) > 1 else None


def _table(entries: Sequence[AuditEntry]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "#": e.seq,
                "time (UTC)": e.at[:19].replace("T", " "),
                "user": e.actor,
                "address": e.address,
                "action": e.action,
                "object": e.object,
                "outcome": e.outcome,
                "detail": e.detail,
            }
            for e in entries
        ],
        columns=["#", "time (UTC)", "user", "address", "action", "object", "outcome", "detail"],
    )


def show_audit(audits: AuditService, admin: User) -> None:
    """Draw the audit view for a signed-in admin; the service records exports and chain checks."""
    st.subheader("Audit log")
    criteria = _filters(audits, admin)
    entries = audits.entries(admin, SHOWN, **criteria)
    if entries:
        more = " (the newest; narrow the filters to see older ones)" if len(entries) == SHOWN else ""
        st.caption(f"{len(entries)} entries, newest first{more}.")
        st.dataframe(_table(entries), hide_index=True, key="audit_table")
    else:
        st.info("No audit entries match these filters.")

    def export() -> bytes:  # built only when the button is clicked
        return audits.export_csv(admin, EXPORTED, **criteria)

    left, right = st.columns(2)
    left.download_button(
        "Download CSV", export, "traineasy-audit.csv", "text/csv", key="audit_csv", disabled=not entries, on_click="ignore"
    )
    if right.button("Verify chain", key="audit_verify"):
        st.session_state["audit_verify_result"] = audits.verify(admin)
    shown = st.session_state.get("audit_verify_result")
    if shown is not None:
        result = shown
        if result.ok:
            st.success(md(f"Chain intact: {result.checked} entries checked. Head hash {result.head}."))
        else:
            st.error(
                md(
                    f"Chain broken at entry #{result.broken_seq}: {result.reason}. "
                    f"{result.checked} entries read; entries from there on cannot be trusted."
                )
            )
