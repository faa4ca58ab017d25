"""Admin: accounts and the state of the engine (Temporal, workers). Reached only through the role gate."""
import pandas as pd
import streamlit as st

from core.accounts import load_credentials
from ui.runtime import guard, service

st.title("Administration")
svc = service()
st.subheader("Accounts")
accounts = load_credentials(svc.storage)["usernames"]
st.dataframe(pd.DataFrame([{"user": name, "roles": ", ".join(a.get("roles") or []), "email": a.get("email")}
                           for name, a in accounts.items()]), hide_index=True, key="accounts_table")
st.subheader("Engine")
with guard("The health check"):
    health = service().health()
    c1, c2 = st.columns(2)
    c1.metric("Temporal", "up" if health["temporal"] else "down", border=True)
    c2.metric("Worker processes polling", health["workers"], border=True)
    st.caption(f"Temporal at {svc.settings.temporal_target}, namespace {svc.settings.namespace}, "
               f"task queue {svc.settings.task_queue}; data in {svc.settings.home}")
