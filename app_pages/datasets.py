"""Datasets: upload a CSV (a worker validates, converts and profiles it), inspect what is stored, delete it."""

import pandas as pd
import streamlit as st

from ui.auth import require_user
from ui.dataset_delete import delete_section, show_deleted_message
from ui.labels import size, when
from ui.outage import launch_blocked, show_blocked
from ui.runtime import guard, service
from ui.text import md

user = require_user()
svc = service()
st.title("Datasets")
show_deleted_message()

blocked = launch_blocked(svc)  # a worker stores an upload, through Temporal
with st.form("upload_form", clear_on_submit=True):
    upload = st.file_uploader(
        "CSV file (comma, semicolon, tab or pipe separated, UTF-8)", type=["csv"], key="upload_file", disabled=bool(blocked)
    )
    show_blocked(blocked)
    submitted = st.form_submit_button("Add dataset", type="primary", disabled=bool(blocked))
if submitted and not blocked:
    if upload is None:
        st.warning("Choose a CSV file first.")
    else:
        with st.spinner(f"Checking and profiling {md(upload.name)}…"), guard("The upload"):
            added = svc.upload_dataset(user, upload.name, upload.getvalue())
            st.session_state["dataset_choice"] = added.dataset_id
            st.success(f"Stored **{md(added.name)}**: {added.rows:,} rows × {added.columns} columns.")

datasets = svc.list_datasets(user)
if not datasets:
    st.info("No datasets yet. Upload a CSV above.")
    st.stop()

st.subheader("Your datasets")
st.dataframe(
    pd.DataFrame(
        [
            {
                "name": d.name,
                "rows": d.rows,
                "columns": len(d.columns),
                "size": size(d.size_bytes),
                "uploaded": when(d.created_at),
                "id": d.dataset_id,
            }
            for d in datasets
        ]
    ),
    hide_index=True,
    key="datasets_table",
)
ids = [d.dataset_id for d in datasets]
by_id = {d.dataset_id: d for d in datasets}
if st.session_state.get("dataset_choice") not in ids:
    st.session_state["dataset_choice"] = ids[0]
chosen = by_id[st.selectbox("Profile of", ids, format_func=lambda i: by_id[i].name, key="dataset_choice")]

st.subheader(f"Profile: {md(chosen.name)}")
c1, c2, c3 = st.columns(3)
c1.metric("Rows", f"{chosen.rows:,}")
c2.metric("Columns", len(chosen.columns))
c3.metric("Missing cells", f"{sum(c.missing for c in chosen.columns):,}")
st.dataframe(
    pd.DataFrame(
        [
            {
                "column": c.name,
                "type": c.dtype,
                "kind": c.kind,
                "missing": c.missing,
                "missing %": round(100 * c.missing / max(chosen.rows, 1), 1),
                "distinct": c.unique,
            }
            for c in chosen.columns
        ]
    ),
    hide_index=True,
    key="profile_table",
)
st.caption("Preview (first rows)")
st.dataframe(pd.DataFrame(chosen.preview, columns=chosen.column_names), hide_index=True, key="preview_table")

delete_section(svc, user, chosen, shown_here=bool(blocked))  # the reason once per page
