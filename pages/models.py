"""Models: the registry of trained models: compare, download, delete, retention, and predictions."""

import pandas as pd
import streamlit as st

from ui.auth import require_user
from ui.compare_view import PRIMARY, show_compare
from ui.predict_view import show_downloads, show_predict
from ui.runtime import guard, service

user = require_user()
svc = service()
st.title("Models")
models = svc.list_models(user)
if not models:
    st.info("No models yet. Every successful training run registers one.")
    st.page_link(st.session_state["pages"]["train"], label="Train a model", icon=":material/play_arrow:")
    st.stop()

by_id = {m.id: m for m in models}
st.dataframe(
    pd.DataFrame(
        [
            {
                "model": m.label,
                "type": m.card.get("model_label"),
                "dataset": m.card["dataset"]["name"],
                "target": m.card["target"],
                PRIMARY[m.card["task"]]: round(m.card["metrics"][PRIMARY[m.card["task"]]], 4),
                "registered": m.created_at,
                "size (KB)": round(m.size_bytes / 1024, 1),
                "tags": ", ".join(m.tags),
            }
            for m in models
        ]
    ),
    hide_index=True,
    key="models_table",
)

st.subheader("Compare")
show_compare(models)

st.subheader("One model")
model = by_id[st.selectbox("Model", list(by_id), format_func=lambda i: by_id[i].label, key="model_choice")]
show_downloads(svc, user, model)
with st.expander("Model card"):
    st.json(model.card, expanded=False)
show_predict(svc, user, model)

st.subheader("Housekeeping")
confirm = st.checkbox(f"Yes, delete {model.label} and its files", key=f"confirm_delete_{model.id}")
if st.button("Delete model", disabled=not confirm, key="delete_model"):
    with guard("Deleting"):
        freed = svc.delete_model(user, model.id)
        st.session_state.pop("prediction", None)
        st.toast(f"Deleted {model.label}; {freed / 1024:.1f} KB reclaimed.")
        st.rerun()
current = svc.keep_last(user)
keep = st.number_input("Keep the last N versions of each model (0 = keep all)", 0, 1000, current or 0, key="keep_last")
if st.button("Apply retention", key="apply_retention"):
    with guard("Applying retention"):
        freed = svc.set_retention(user, int(keep) or None)
        st.toast(f"Retention set; {freed / 1024:.1f} KB reclaimed.")
        st.rerun()
