"""The "Open in Temporal UI" link of a run or batch page, with what a user will (not) see there."""

from __future__ import annotations

import streamlit as st

from core.accounts import User


def temporal_link(url: str | None, user: User) -> None:
    if not url:
        return
    st.link_button("Open in Temporal UI", url, icon=":material/open_in_new:")
    if "admin" not in user.roles:
        st.caption(
            "Temporal's own view of the steps and their timing. Inputs and results there stay encrypted: "
            "only admins can read them (their browser is set up from Admin → Engine)."
        )
