"""The one outage banner, on every page (drawn by app.py after sign-in): what is down, since when, what still
works, and that it recovers by itself. A fragment re-reads the engine watch every few seconds and reruns the
whole app when the state flips either way, so pages enable or disable their controls without a reload."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from orchestration.engine_watch import EngineState, utc_now
from ui.sync_service import SyncService

BANNER_EVERY = 2.0  # seconds; the watch probes as often
BANNER_KEY = "engine_banner"  # its container's key (the class st-key-engine_banner: browser tests find it)


def ago(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    return f"{seconds} s ago" if seconds < 60 else f"{seconds // 60} min ago"


def banner_text(state: EngineState, now: datetime) -> str:
    since = f" since {state.down_since:%H:%M:%S} UTC ({ago(state.down_since, now)})" if state.down_since else ""
    return (
        f"**The training engine (Temporal) is not reachable**{since}. "
        "Launching is disabled: training, batches, uploads, data checks and predictions need it. "
        "Your datasets, models and finished results stay browsable; runs show what was last read. "
        "This recovers by itself when Temporal is back: no reload needed."
    )


def show_engine_banner(svc: SyncService) -> None:
    drawn_up = svc.engine().up  # what this full run of the page was drawn for

    @st.fragment(run_every=BANNER_EVERY)
    def banner() -> None:
        state = svc.engine()
        if state.up != drawn_up:
            st.rerun(scope="app")  # the page redraws its controls for the new state
        if state.down:
            with st.container(key=BANNER_KEY):
                st.error(banner_text(state, utc_now()), icon=":material/cloud_off:")

    banner()
