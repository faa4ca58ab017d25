"""The Account page's API tokens: create one (its secret shown once, in this run only), list them with their
creation and last use, revoke one. The calls go through AccountService, which audits them."""

from __future__ import annotations

from urllib.parse import urlsplit

import streamlit as st

from core.accounts import User
from core.api_tokens import MAX_NAME, TokenError
from core.config import load_settings
from ui.labels import when
from ui.runtime import accounts_service
from ui.text import md


def api_address() -> str:
    """The REST API's address as this browser reaches the app: same host, the API's port."""
    settings = load_settings()
    host = urlsplit(st.context.url or "").hostname or "localhost"
    return f"{'https' if settings.tls else 'http'}://{host}:{settings.api_port}"


def draw_api_tokens(user: User) -> None:
    st.subheader("API tokens")
    base = api_address()
    st.caption(
        f"For scripts and CI jobs: send `Authorization: Bearer <token>` to the REST API at `{base}/api/v1` "
        f"(reference: {base}/docs). A token acts as you, with your quotas; revoke it when you no longer need it."
    )
    with st.form("api_token_form", clear_on_submit=True):
        name = st.text_input("Token name", max_chars=MAX_NAME, placeholder="nightly batch", key="api_token_name")
        create = st.form_submit_button("Create token")
    if create:
        try:
            token, secret = accounts_service().create_api_token(user, name)
        except TokenError as err:
            st.error(str(err))
        else:  # never stored, never shown again: the next rerun of the page forgets it
            st.success(f"Token “{md(token.name)}” created. Copy it now: it is shown only this once.")
            st.code(secret, language=None)
    tokens = accounts_service().api_tokens(user)
    if not tokens:
        st.caption("No API tokens yet.")
    for token in tokens:
        left, right = st.columns([5, 1], vertical_alignment="center")
        used = f"last used {when(token.last_used)}" if token.last_used else "never used"
        left.markdown(f"**{md(token.name)}** · id `{token.token_id}` · created {when(token.created_at)} · {used}")
        if right.button("Revoke", key=f"revoke_token_{token.token_id}"):
            try:
                accounts_service().revoke_api_token(user, token.token_id)
            except TokenError as err:
                st.error(str(err))
            else:
                st.rerun()
