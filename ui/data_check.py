"""The data check as the launch forms show it: findings by level, the estimate, and the identifier-like
columns a user may keep as features after all."""

from __future__ import annotations

import streamlit as st

from orchestration.contracts import CheckFinding, CheckReport
from ui.text import md

SHOW = {"error": st.error, "warning": st.warning, "info": st.info}


def include_key(dataset_id: str, target: str) -> str:
    """The session key of the identifier columns kept as features, per dataset and target."""
    return f"include_ids_{dataset_id}_{target}"


def kept_identifiers(dataset_id: str, target: str) -> list[str]:
    """The identifier columns the user chose to keep (read before the check: it is one of its inputs)."""
    return list(st.session_state.get(include_key(dataset_id, target), []))


def draw_findings(findings: list[CheckFinding]) -> None:
    for f in sorted(findings, key=lambda f: list(SHOW).index(f.level)):
        SHOW[f.level](md(f.message))


def draw_report(report: CheckReport, dataset_id: str, target: str, cv_folds: int) -> list[CheckFinding]:
    """Draw the report; returns its errors (the Start button is off while there are any)."""
    draw_findings(report.findings)
    if not report.findings:
        st.success("No problems found.")
    if report.id_columns:
        st.multiselect(
            "Identifier-like columns to use as features anyway",
            report.id_columns,
            key=include_key(dataset_id, target),
            help="Left out by default: a row number or a customer number tells nothing about new rows. "
            "Keep one only if it really measures something.",
        )
    if report.estimate_seconds is not None:
        secs = report.estimate_seconds
        st.caption(
            f"{report.usable_rows:,} usable rows × {report.features} features. Rough estimate for one "
            f"fit: {'under a second' if secs < 1 else f'~{secs:.0f} s'} and ~{report.estimate_memory_mb:.0f} MB"
            f"{f', times {cv_folds + 1} with cross-validation' if cv_folds else ''}."
        )
    return [f for f in report.findings if f.level == "error"]
