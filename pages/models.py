"""Models: the registry of trained models: compare, download, delete, retention, and predictions."""

import pandas as pd
import streamlit as st

from orchestration.contracts import PRIMARY_METRIC
from ui.auth import require_user
from ui.compare_view import show_compare
from ui.predict_view import show_downloads, show_predict
from ui.retention import retention_section
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
# versions are counted per dataset and target: two "logistic_regression v1" are told apart by their data
shared = {label for label in (m.label for m in models) if sum(n.label == label for n in models) > 1}
names = {m.id: f"{m.label} · {m.dataset_name} → {m.target}" if m.label in shared else m.label for m in models}
st.dataframe(
    pd.DataFrame(
        [
            {
                "model": m.label,
                "type": m.model_label,
                "dataset": m.dataset_name,
                "target": m.target,
                "score": round(m.metrics[PRIMARY_METRIC[m.task]], 4),
                "metric": PRIMARY_METRIC[m.task].replace("_", " "),
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
model = by_id[st.selectbox("Model", list(by_id), format_func=names.__getitem__, key="model_choice")]
show_downloads(svc, user, model)
with st.expander("Model card"):
    st.json(model.card, expanded=False)
show_predict(svc, user, model)

st.subheader("Housekeeping")
confirm = st.checkbox(f"Yes, delete {names[model.id]} and its files", key=f"confirm_delete_{model.id}")
if st.button("Delete model", disabled=not confirm, key="delete_model"):
    with guard("Deleting"):
        freed = svc.delete_model(user, model.id)
        st.session_state.pop("prediction", None)
        st.toast(f"Deleted {model.label}; {freed / 1024:.1f} KB reclaimed.")
        st.rerun()
retention_section(svc, user)
