"""Account: the signed-in user sees what they use of their quota, changes their own password (their other sessions
end) and manages their API tokens."""

import streamlit as st

from core.accounts import AccountError
from ui.api_tokens import draw_api_tokens
from ui.auth import require_user, session_token
from ui.outage import launch_blocked, show_blocked
from ui.runtime import accounts_service, guard, service

user = require_user()
st.title("Your account")
st.write(f"Signed in as **{user.name}** ({', '.join(user.roles)}).")

st.subheader("Your usage")
svc = service()
blocked = launch_blocked(svc)  # runs in flight are read through Temporal
if blocked:
    show_blocked(blocked)
else:
    with guard("Reading your quota"):
        st.caption(svc.usage(user).caption)  # the line the Train and Batch pages show too

st.subheader("Change password")
with st.form("password_form", clear_on_submit=True):
    current = st.text_input("Current password", type="password", key="pw_current")
    new = st.text_input("New password (at least 10 characters)", type="password", key="pw_new")
    again = st.text_input("New password again", type="password", key="pw_again")
    submitted = st.form_submit_button("Change password", type="primary")
if submitted:
    try:
        ended = accounts_service().change_password(user, current, new, again, keep_session=session_token())
    except AccountError as err:
        st.error(str(err))
    else:
        st.success(f"Password changed. {ended} other session(s) of yours were signed out.")

draw_api_tokens(user)
