"""Home: what to do next, and whether the engine behind the app is up (the details for admins only)."""

import streamlit as st

from ui.auth import require_user
from ui.health_view import show_for_user, show_overall
from ui.runtime import guard, service

user = require_user()
pages = st.session_state["pages"]
st.title("TrainEasy")
st.write(f"Welcome, **{user.name}**. Upload a CSV, pick a target and a model, and watch it train.")

cols = st.columns(3)
cols[0].page_link(pages["datasets"], label="1 · Upload a dataset", icon=":material/upload:")
cols[1].page_link(pages["train"], label="2 · Train a model", icon=":material/play_arrow:")
cols[2].page_link(pages["runs"], label="3 · Watch your runs", icon=":material/monitoring:")

st.subheader("System")
with guard("The health check"):
    report = service().health()
    if user.is_admin:
        show_overall(report)
    else:
        show_for_user(report)
