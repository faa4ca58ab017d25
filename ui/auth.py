"""The gate every page calls first: a signed-in user (server-side session) with the right role, or
nothing but the sign-in prompt. Pages must not rely on app.py having run (see DESIGN: old multipage mode)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote, urlsplit

import streamlit as st

from core.accounts import User
from core.audit import AuditLog
from core.config import load_settings
from core.sessions import SESSION_COOKIE, Sessions
from core.storage import Storage
from ui.signin import safe_next

SIGNED_OUT = "_signed_out"  # set at logout: this tab's websocket still carries the old cookie


@st.cache_resource(show_spinner=False)
def sessions() -> Sessions:
    settings = load_settings()
    return Sessions(Storage(settings.home), settings.session_lifetime)


@st.cache_resource(show_spinner=False)
def audit_log() -> AuditLog:
    return AuditLog(Storage(load_settings().home))


def session_token() -> str | None:
    return None if st.session_state.get(SIGNED_OUT) else st.context.cookies.get(SESSION_COOKIE)


def signed_in_user() -> User | None:
    try:
        return sessions().user(session_token())
    except Exception:  # an unreadable database must not open the door: treat as signed out
        return None


def client_address() -> str:
    """The browser's address for the audit log. `st.context.ip_address` hides loopback (None), so read
    the connection's own address; X-Forwarded-For counts only from configured proxies (see launcher)."""
    try:
        from streamlit.runtime.context import _get_client_context  # no public API shows loopback

        context = _get_client_context()
        return (context.remote_ip or "") if context is not None else ""
    except Exception:
        return st.context.ip_address or ""


def require_user(role: str | None = None) -> User:
    """The signed-in user, or stop after drawing only the sign-in prompt (or a refusal for a role)."""
    user = signed_in_user()
    if user is None:
        st.title("Sign in to TrainEasy")
        if st.session_state.get(SIGNED_OUT):
            st.info("You are signed out.")
        path = safe_next(urlsplit(st.context.url or "").path or "/")
        st.link_button("Sign in", f"/auth/login?next={quote(path, safe='/')}", type="primary")
        st.stop()
    user = replace(user, address=client_address())
    if role is not None and role not in user.roles:
        try:
            audit_log().record(
                user.name, "page.refused", urlsplit(st.context.url or "").path, "refused", user.address, f"needs the {role} role"
            )
        finally:
            st.error("This page is for administrators only.")
            st.stop()
    return user


def sign_out() -> None:
    """End the session server-side at once, forget this tab's page state."""
    sessions().revoke(session_token())
    for key in list(st.session_state):
        del st.session_state[key]
    st.session_state[SIGNED_OUT] = True
