"""Models: the registry of trained models: compare, download, delete, retention, and predictions."""

import pandas as pd
import streamlit as st

from ui import charts
from ui.auth import require_user
from ui.retention import retention_section
from ui.runtime import guard, service
from ui.text import md

PRIMARY = {"classification": "balanced_accuracy", "regression": "r2"}

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
picked = st.multiselect(
    "Models to compare", list(by_id), default=list(by_id)[:3], key="compare_models", format_func=lambda i: by_id[i].label
)
if picked:
    chosen = [by_id[i] for i in picked]
    table = pd.DataFrame(
        [
            {
                "model": m.label,
                **{k: round(v, 4) for k, v in m.card["metrics"].items()},
                "fit s": m.card.get("fit_seconds"),
                "CPU s": m.card.get("cpu_seconds"),
                "peak MB": m.card.get("peak_rss_mb"),
            }
            for m in chosen
        ]
    )
    st.dataframe(table, hide_index=True, key="compare_table")
    metric = PRIMARY[chosen[0].card["task"]]
    same_task = [m for m in chosen if metric in m.card["metrics"]]
    st.plotly_chart(
        charts.metric_bars([(m.label, m.card["metrics"][metric]) for m in same_task], metric),
        key="compare_chart",
        width="stretch",
    )

st.subheader("One model")
model = by_id[st.selectbox("Model", list(by_id), format_func=lambda i: by_id[i].label, key="model_choice")]
# the files are read only when a download is clicked, not on every rerun of the page
c1, c2 = st.columns(2)
c1.download_button(
    "Download model (.skops)",
    lambda: svc.model_download(user, model.id)[0],
    f"{model.name}-v{model.version}.skops",
    "application/octet-stream",
    key="download_model",
)
c2.download_button(
    "Download model card (.json)",
    lambda: svc.model_download(user, model.id)[1],
    f"{model.name}-v{model.version}.json",
    "application/json",
    key="download_card",
)
with st.expander("Model card"):
    st.json(model.card, expanded=False)

st.markdown("**Predict** with this model")
upload = st.file_uploader("CSV with the same columns as the training data", type=["csv"], key="predict_file")
if st.button("Predict", key="predict_button", disabled=upload is None) and upload is not None:
    with st.spinner("A worker is predicting…"), guard("Prediction"):
        st.session_state["prediction"] = svc.predict(user, model.id, upload.name, upload.getvalue())
result = st.session_state.get("prediction")
if result:
    st.success(f"{result.rows:,} predictions with {result.model}.")
    for note in result.notes:
        st.info(md(note))
    st.dataframe(pd.DataFrame(result.preview), hide_index=True, key="prediction_preview")
    predictions_file = result.file
    st.download_button(
        "Download predictions (.csv)",
        lambda: svc.prediction_file(user, predictions_file),
        "predictions.csv",
        "text/csv",
        key="download_predictions",
    )

st.subheader("Housekeeping")
confirm = st.checkbox(f"Yes, delete {model.label} and its files", key=f"confirm_delete_{model.id}")
if st.button("Delete model", disabled=not confirm, key="delete_model"):
    with guard("Deleting"):
        freed = svc.delete_model(user, model.id)
        st.session_state.pop("prediction", None)
        st.toast(f"Deleted {model.label}; {freed / 1024:.1f} KB reclaimed.")
        st.rerun()
retention_section(svc, user)
