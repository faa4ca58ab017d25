"""TrainEasy entry point: the sign-in gate, then navigation built from the user's role."""

from __future__ import annotations

import streamlit as st

from ui.auth import require_user, sign_out
from ui.engine_banner import show_engine_banner
from ui.nav import PAGES, allowed
from ui.runtime import audit, service
from ui.sync_service import Unavailable

st.set_page_config(page_title="TrainEasy", page_icon=":material/model_training:", layout="wide")

# Register every page first: a deep link must survive the gate's first run.
pages = {
    key: st.Page(p.file, title=p.title, icon=p.icon, url_path=p.url_path or None, default=key == "home")
    for key, p in PAGES.items()
}
page = st.navigation(list(pages.values()), position="hidden")
st.session_state["pages"] = pages

user = require_user()
visible = [key for key, p in PAGES.items() if allowed(p, user.roles)]
with st.sidebar:
    st.markdown(f"**TrainEasy** · {user.name} ({', '.join(user.roles)})")
    for key in visible:
        st.page_link(pages[key])
    if st.button("Log out", key="logout_button"):
        audit("logout", user.name, user=user)
        sign_out()
        st.rerun()

try:
    svc = service()  # connects lazily: it answers while Temporal is down, and the banner says so
except Unavailable as err:  # the client could not even be set up (a bad address or TLS setting)
    st.error(f"{err}. Check TEMPORAL_ADDRESS and the TLS settings, then reload.")
    st.stop()
show_engine_banner(svc, admin=user.is_admin)
page.run()
