"""The audit log on the Admin page: filters, the newest entries, a formula-safe CSV export, a chain check."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import streamlit as st

from core.audit import OUTCOMES, AuditLog
from ui.text import md

SHOWN = 500  # rows in the table; the export takes up to EXPORTED
EXPORTED = 100_000
ANYONE, ANY = "(anyone)", "(any)"


def _filters(audit: AuditLog) -> dict:
    who, action, outcome, days = st.columns([2, 2, 1, 2])
    actor = who.selectbox("User", [ANYONE, *audit.actors()], key="audit_actor")
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


def _date_range(picked) -> tuple[date | None, date | None]:
    """date_input gives a tuple of 0, 1 (while the second date is being picked) or 2 dates."""
    if isinstance(picked, date):
        return picked, picked
    picked = tuple(picked or ())
    if not picked:
        return None, None
    return picked[0], picked[-1] if len(picked) > 1 else None


def _table(entries) -> pd.DataFrame:
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


def show_audit(audit: AuditLog, actor: str | None = None, address: str | None = None) -> None:
    """Draw the audit view. With `actor` (the signed-in admin), exports and chain checks are audited too."""
    st.subheader("Audit log")
    criteria = _filters(audit)
    entries = audit.query(**criteria, limit=SHOWN)
    if entries:
        more = " (the newest; narrow the filters to see older ones)" if len(entries) == SHOWN else ""
        st.caption(f"{len(entries)} entries, newest first{more}.")
        st.dataframe(_table(entries), hide_index=True, key="audit_table")
    else:
        st.info("No audit entries match these filters.")

    def export() -> bytes:
        data = audit.export_csv(audit.query(**criteria, limit=EXPORTED)[::-1])  # oldest first, as a log reads
        if actor:
            audit.record(actor, "audit.export", address=address, detail=_describe(criteria))
        return data

    left, right = st.columns(2)
    left.download_button(
        "Download CSV", export, "traineasy-audit.csv", "text/csv", key="audit_csv", disabled=not entries, on_click="ignore"
    )
    if right.button("Verify chain", key="audit_verify"):
        result = audit.verify()
        st.session_state["audit_verify_result"] = result
        if actor:
            audit.record(actor, "audit.verify", outcome="ok" if result.ok else "error", address=address, detail=str(result))
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


def _describe(criteria: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in criteria.items() if v is not None) or "all entries"
