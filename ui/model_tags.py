"""Tags on the Models page: a tagged version is kept by retention, whatever its age."""

from __future__ import annotations

import streamlit as st

from core.accounts import User
from core.model_record import ModelRecord
from ui.runtime import guard
from ui.sync_service import SyncService
from ui.text import md


def tag_section(svc: SyncService, user: User, model: ModelRecord) -> None:
    """The model's tags, a field to add one, and a button to take one off."""
    with st.container(border=True, key="model_tags"):
        shown = ", ".join(f"“{md(t)}”" for t in model.tags)
        st.markdown(
            f"**Tags**: {shown if model.tags else 'none'}. A tagged version is never deleted by retention: "
            "tag the one you want to keep."
        )
        left, right = st.columns(2)
        with left.form(f"add_tag_{model.id}", clear_on_submit=True, border=False):
            text = st.text_input("New tag", max_chars=40, placeholder="keep", key=f"new_tag_{model.id}")
            if st.form_submit_button("Add tag"):
                with guard("Tagging"):
                    svc.tag_model(user, model.id, text)
                    st.rerun()
        if model.tags:
            tag = right.selectbox("Tag to take off", model.tags, key=f"old_tag_{model.id}")
            if right.button("Remove tag", key=f"remove_tag_{model.id}") and tag:
                with guard("Removing the tag"):
                    svc.untag_model(user, model.id, tag)
                    st.rerun()
