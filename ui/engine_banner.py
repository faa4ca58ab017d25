"""The one outage banner, on every page (drawn by app.py after sign-in): what is down, since when, what still
works, and whether it recovers by itself or an admin must restart the stack. A fragment re-reads the engine
watch every few seconds and reruns the whole app when the state flips either way, so pages enable or disable
their controls without a reload; a message a page showed just before that rerun is shown again after it."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from orchestration.engine_watch import EngineState, utc_now
from ui.runtime import NOTICE_KEY
from ui.sync_service import SyncService

BANNER_EVERY = 2.0  # seconds; the watch probes as often
BANNER_KEY = "engine_banner"  # its container's key (the class st-key-engine_banner: browser tests find it)
FLIPPED_KEY = "engine_flipped"  # set by the fragment just before it reruns the app for a flip


def ago(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    return f"{seconds} s ago" if seconds < 60 else f"{seconds // 60} min ago"


def banner_text(state: EngineState, now: datetime) -> str:
    since = f" since {state.down_since:%H:%M:%S} UTC ({ago(state.down_since, now)})" if state.down_since else ""
    return (
        f"**{state.what if state.refused else 'The training engine (Temporal) is not reachable'}**{since}. "
        "Launching is disabled: training, batches, uploads, data checks and predictions need it. "
        "Your datasets, models and finished results stay browsable; runs show what was last read. "
        f"{state.recovery()}"
    )


def admin_detail(state: EngineState) -> str | None:
    """For admins: the last probe's own words (no secrets in it), to tell a dead server from a refusing one."""
    return f"Last probe: {state.last_error}" if state.down and state.last_error else None


def carried_notice() -> str | None:
    """The message a page showed in the run that a flip's rerun replaced (once), else None; every full run
    drops what it does not show, so a notice never outlives the rerun it was kept for."""
    notice, flipped = st.session_state.pop(NOTICE_KEY, None), st.session_state.pop(FLIPPED_KEY, False)
    return notice if flipped else None


def show_engine_banner(svc: SyncService, admin: bool = False) -> None:
    drawn_up = svc.engine().up  # what this full run of the page was drawn for
    notice = carried_notice()

    @st.fragment(run_every=BANNER_EVERY)
    def banner() -> None:
        state = svc.engine()
        if state.up != drawn_up:
            st.session_state[FLIPPED_KEY] = True  # the next full run shows the message this one showed
            st.rerun(scope="app")  # the page redraws its controls for the new state
        if state.down:
            with st.container(key=BANNER_KEY):
                st.error(banner_text(state, utc_now()), icon=":material/cloud_off:")
                detail = admin_detail(state) if admin else None
                if detail:
                    st.caption(detail)

    banner()
    if notice:
        st.warning(notice, icon=":material/cloud_off:")
