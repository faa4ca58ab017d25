"""TrainEasy entry point: the one login gate, then navigation built from the user's role."""
from __future__ import annotations

import streamlit as st
import streamlit_authenticator as stauth

from core.accounts import cookie_key, load_credentials
from core.config import load_settings
from core.storage import Storage
from ui.runtime import Unavailable, service

st.set_page_config(page_title="TrainEasy", page_icon=":material/model_training:", layout="wide")

PAGES = {
    "home": st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    "datasets": st.Page("pages/datasets.py", title="Datasets", icon=":material/table:", url_path="datasets"),
    "train": st.Page("pages/train.py", title="Train", icon=":material/play_arrow:", url_path="train"),
    "batch": st.Page("pages/batch.py", title="Batch", icon=":material/stacks:", url_path="batch"),
    "runs": st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:", url_path="runs"),
    "models": st.Page("pages/models.py", title="Models", icon=":material/deployed_code:", url_path="models"),
    "admin": st.Page("pages/admin.py", title="Admin", icon=":material/admin_panel_settings:", url_path="admin"),
}
USER_PAGES = ("home", "datasets", "train", "batch", "runs", "models")
ROLE_PAGES = {"user": USER_PAGES, "admin": (*USER_PAGES, "admin")}
# session keys owned by streamlit-authenticator and its cookie component; everything else is page state
AUTH_KEYS = {"authentication_status", "name", "username", "email", "roles", "logout", "password_hint", "init"}

# Register every page before authenticating: the cookie component's first rerun must not lose a deep link.
page = st.navigation(list(PAGES.values()), position="hidden")
st.session_state["pages"] = PAGES

storage = Storage(load_settings().home)
authenticator = stauth.Authenticate(
    load_credentials(storage), "traineasy_auth", cookie_key(storage), 7, auto_hash=False, login_sleep_time=0,
)
authenticator.login(key="login_form", fields={"Form name": "Sign in to TrainEasy"})
status = st.session_state.get("authentication_status")
if not status:
    if status is False:
        st.error("Wrong user name or password.")
    else:
        st.caption("First start? The demo accounts were printed by `make run` and are kept in var/demo-accounts.txt.")
    st.stop()

roles = st.session_state.get("roles") or ["user"]
allowed = [key for key in PAGES if any(key in ROLE_PAGES.get(role, ()) for role in roles)]
with st.sidebar:
    st.markdown(f"**TrainEasy** · {st.session_state['name']} ({', '.join(roles)})")
    for key in allowed:
        st.page_link(PAGES[key])
    if st.button("Log out", key="logout_button"):
        authenticator.logout(location="unrendered")   # also renders the cookie manager's delete command
        for key in [k for k in st.session_state if k not in AUTH_KEYS]:
            del st.session_state[key]   # the next user of this tab must not see this one's results
        st.info("You are signed out.")
        # stop, not rerun: this run's output must reach the browser, or the cookie is never deleted
        # and a reload signs the user back in; the cookie component's answer then reruns the app
        st.stop()

try:
    service()
except Unavailable as err:
    st.error(f"{err}. Is the stack running (`make run`)?")
    st.stop()
if page.url_path not in {PAGES[key].url_path for key in allowed}:
    st.error("This page is for administrators only.")
    st.stop()
page.run()
