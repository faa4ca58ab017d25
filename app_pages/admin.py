"""Admin: accounts (add, disable, re-enable, reset, change role), quotas, the audit log and the engine."""

from collections.abc import Callable

import pandas as pd
import streamlit as st

from core.accounts import ROLES, AccountError
from ui.audit_view import show_audit
from ui.auth import require_user
from ui.health_view import show_health
from ui.quota_admin import show_quota_admin
from ui.runtime import accounts_service, audit_service, guard, service
from ui.text import md

admin = require_user("admin")
st.title("Administration")
accounts_tab, quotas_tab, audit_tab, engine_tab = st.tabs(["Accounts", "Quotas", "Audit log", "Engine"])
svc_accounts = accounts_service()


def _apply(action: Callable[[], object], done: str) -> None:
    """Run one account change; a refusal is shown, never raised."""
    try:
        result = action()
    except AccountError as err:
        st.error(md(err))
        return
    st.session_state["admin_notice"] = done.format(result=result)
    st.rerun()


with accounts_tab:
    if notice := st.session_state.pop("admin_notice", None):
        st.success(notice)
    accounts = svc_accounts.list_accounts(admin)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "user": a.name,
                    "role": a.role,
                    "status": "disabled" if a.disabled else "active",
                    "email": a.email,
                    "created": a.created_at,
                    "last sign-in": a.last_login,
                }
                for a in accounts
            ]
        ),
        hide_index=True,
        key="accounts_table",
    )
    left, right = st.columns(2)
    with left.form("add_user_form", clear_on_submit=True):
        st.markdown("**Add a user**")
        name = st.text_input("User name", key="new_user_name", help="2-32 lower-case letters, digits or _")
        email = st.text_input("E-mail (optional)", key="new_user_email")
        role = st.selectbox("Role", ROLES, index=ROLES.index("user"), key="new_user_role")
        if st.form_submit_button("Add user", type="primary"):
            _apply(
                lambda: svc_accounts.add_user(admin, name.strip(), role, email.strip()),
                f"Added {name.strip()}. Their password (shown once, hand it over privately): {{result}}",
            )
    with right:
        st.markdown("**Change a user**")
        names = [a.name for a in accounts]
        picked = st.selectbox("User", names, key="admin_user_choice")
        chosen = next(a for a in accounts if a.name == picked)
        if chosen.disabled:
            if st.button("Re-enable", key="enable_user"):
                _apply(lambda: svc_accounts.set_disabled(admin, chosen.name, False), f"{chosen.name} is enabled again.")
        elif st.button("Disable (signs them out now)", key="disable_user"):
            _apply(lambda: svc_accounts.set_disabled(admin, chosen.name, True), f"{chosen.name} is disabled.")
        locked = svc_accounts.locked_names(admin)
        if chosen.name in locked:
            st.warning(f"Sign-in locked after failed attempts until {locked[chosen.name]:%H:%M:%S} UTC.")
            if st.button("Unlock sign-in", key="unlock_user"):
                _apply(lambda: svc_accounts.unlock(admin, chosen.name), f"{chosen.name} may sign in again.")
        if st.button("Reset password", key="reset_password"):
            _apply(
                lambda: svc_accounts.reset_password(admin, chosen.name),
                f"New password for {chosen.name} (shown once): {{result}}",
            )
        new_role = st.selectbox("Role", ROLES, index=ROLES.index(chosen.role), key=f"role_of_{chosen.name}")
        if st.button("Change role", key="change_role", disabled=new_role == chosen.role):
            _apply(lambda: svc_accounts.set_role(admin, chosen.name, new_role), f"{chosen.name} is now {new_role}.")

with quotas_tab, guard("Quotas"):
    show_quota_admin(service(), admin, [a.name for a in accounts])

with audit_tab:
    show_audit(audit_service(), admin)

with engine_tab, guard("The health check"):
    svc = service()
    st.button("Check again", key="health_refresh", icon=":material/refresh:")  # a click reruns the page: a fresh check
    show_health(svc.health())
    engine = svc.engine_info(admin)
    st.caption(
        f"Temporal at {engine.temporal_target}, namespace {engine.namespace}, "
        f"task queue {engine.task_queue}; data in {engine.home}"
    )
    st.markdown(
        "**Decrypted payloads in the Temporal CLI**: workflow data is encrypted; the CLI can decode it "
        "through this app's `/codec` endpoint with a short-lived admin token."
    )
    if st.button("Create a 1-hour token", key="codec_token"):
        token = svc_accounts.cli_token(admin)
        st.code(
            f"export TEMPORAL_CODEC_ENDPOINT={(st.context.url or '').rstrip('/').rsplit('/admin', 1)[0]}/codec\n"
            f'export TEMPORAL_CODEC_AUTH="Bearer {token}"',
            language="bash",
        )
        st.caption("Shown once. It is a session of yours: signing out everywhere (a password change) ends it.")
