"""Drawing the engine's health (orchestration/health.py `HealthReport`): the full view on the Admin page's
engine tab (`show_health`), the overall state with its reasons for admins (`show_overall`, Admin and Home)
and in a user's terms for everyone else (`show_for_user`, Home)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from orchestration.health import HealthReport, user_summary
from orchestration.health_checks import DEGRADED, DOWN, OK, child_log, size_text, workers_text
from orchestration.liveness import ALIVE_WINDOW, BEAT_INTERVAL
from ui.labels import when
from ui.text import md

CHECK_NAMES = {
    "temporal": "Temporal server",
    "workers": "Worker processes",
    "storage": "Storage",
    "database": "App database",
    "supervisor": "Launcher",
}
STATE_WORDS = {OK: "ok", DEGRADED: "degraded", DOWN: "down"}
BOXES = {
    OK: (st.success, ":material/check_circle:"),
    DEGRADED: (st.warning, ":material/warning:"),
    DOWN: (st.error, ":material/error:"),
}
LIVENESS_NOTE = (
    f"each worker process rewrites its beat file every {BEAT_INTERVAL:g} s; one silent for {ALIVE_WINDOW:g} s is not counted"
)


def show_for_user(report: HealthReport) -> None:
    """The overall state in one box, in a user's terms: no process, log or server detail (those are for admins)."""
    box, icon = BOXES[report.state]
    box(user_summary(report), icon=icon)


def show_overall(report: HealthReport) -> None:
    """The overall state in one box: green, amber or red, with the reasons when it is not ok."""
    if report.state == OK:
        st.success(f"Everything is working: {workers_text(report.live_workers)} alive.", icon=":material/check_circle:")
    elif report.state == DEGRADED:
        st.warning("Working, with problems: " + md(" ".join(report.reasons)), icon=":material/warning:")
    else:
        st.error("Not working: " + md(" ".join(report.reasons)), icon=":material/error:")


def show_health(report: HealthReport) -> None:
    """Every check with its state and reason, Temporal's latency, the live workers, free space, the
    launcher's children (any given-up one flagged)."""
    st.markdown(f"**Overall: {STATE_WORDS[report.state]}** (checked {when(report.checked_at)})")
    show_overall(report)
    c1, c2, c3 = st.columns(3)
    latency = report.temporal.latency_ms
    c1.metric("Temporal round trip", f"{latency:.0f} ms" if latency is not None else "no answer", border=True)
    c2.metric("Workers alive", report.live_workers, border=True)
    c3.metric("Free space for data", size_text(report.free_bytes) if report.free_bytes is not None else "unknown", border=True)
    st.table(
        pd.DataFrame(
            [{"check": CHECK_NAMES.get(c.name, c.name), "state": STATE_WORDS[c.state], "why": c.reason} for c in report.checks]
        ).set_index("check")
    )
    st.markdown(f"**Workers** ({LIVENESS_NOTE})")
    if report.workers:
        rows = [
            {
                "worker": w.worker,
                "queue": w.queue,
                "slots": w.slots,
                "busy": w.busy,
                "free": w.free,
                "last beat": f"{w.last_beat_s:.1f} s ago",
            }
            for w in report.workers
        ]
        st.table(pd.DataFrame(rows).set_index("worker"))
    else:
        st.caption("No worker process is alive.")
    if report.children:
        st.markdown("**Processes under the launcher**")
        for child in report.children:
            if child.state == "given-up":
                st.error(
                    f"{child.name} was given up after failing again and again; everything else keeps running. "
                    f"Its log is {child_log(child.name)}.",
                    icon=":material/block:",
                )
        children = [
            {"process": c.name, "state": c.state, "restarts": c.restarts, "since": when(c.since)} for c in report.children
        ]
        st.table(pd.DataFrame(children).set_index("process"))
