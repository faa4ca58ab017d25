"""Models: the registry of trained models: compare, download, tag, delete, retention, and predictions."""

import pandas as pd
import streamlit as st

from core.model_record import ModelRecord
from orchestration.contracts import PRIMARY_METRIC
from ui.auth import require_user
from ui.compare_view import show_compare
from ui.labels import MISSING, dataset_key, dataset_labels, metric_name, model_labels, size, when
from ui.model_tags import tag_section
from ui.predict_view import show_downloads, show_predict
from ui.retention import retention_section
from ui.runtime import guard, service
from ui.text import md

user = require_user()
svc = service()
st.title("Models")
models = svc.list_models(user)
if not models:
    st.info("No models yet. Every successful training run registers one.")
    st.page_link(st.session_state["pages"]["train"], label="Train a model", icon=":material/play_arrow:")
    st.stop()

by_id = {m.id: m for m in models}
uploaded = {d.dataset_id: d.created_at for d in svc.list_datasets(user)}
# versions are counted per dataset and target: two "logistic_regression v1" are told apart by their data,
# two uploads named sales.csv by their upload time; every choice of a model uses these names
names = model_labels(models, uploaded)
data_names = dataset_labels(models, uploaded)


def dataset_text(m: ModelRecord) -> str:
    key = dataset_key(m)
    return data_names[key] + ("" if key in uploaded else " (deleted)")


st.dataframe(
    pd.DataFrame(
        [
            {
                "model": names[m.id],
                "score": round(m.metrics[PRIMARY_METRIC[m.task]], 4),
                "metric": metric_name(PRIMARY_METRIC[m.task]),
                "tags": ", ".join(m.tags),
                "dataset": dataset_text(m),
                "target": m.target,
                "type": m.model_label,
                "registered": when(m.created_at),
                "size": size(m.size_bytes),
            }
            for m in models
        ]
    ),
    hide_index=True,
    key="models_table",
    placeholder=MISSING,
    width="stretch",
    column_config={
        "model": st.column_config.TextColumn(width="large"),
        "score": st.column_config.NumberColumn(width="small"),
        "tags": st.column_config.TextColumn(width="medium"),
    },
)

st.subheader("Compare")
show_compare(models, uploaded)

st.subheader("One model")
model = by_id[st.selectbox("Model", list(by_id), format_func=names.__getitem__, key="model_choice")]
show_downloads(svc, user, model)
tag_section(svc, user, model)
with st.expander("Model card"):
    st.json(model.card, expanded=False)
show_predict(svc, user, model)

st.subheader("Housekeeping")
confirm = st.checkbox(f"Yes, delete {md(names[model.id])} and its files", key=f"confirm_delete_{model.id}")
if st.button("Delete model", disabled=not confirm, key="delete_model"):
    with guard("Deleting"):
        freed = svc.delete_model(user, model.id)
        st.session_state.pop("prediction", None)
        st.toast(f"Deleted {md(names[model.id])}; {size(freed)} reclaimed.")
        st.rerun()
retention_section(svc, user, models, names, data_names)
