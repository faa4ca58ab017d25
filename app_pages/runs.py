"""Runs: the user's training runs; `?run=<id>` opens the live view of one."""

import pandas as pd
import streamlit as st

from ui.auth import require_user
from ui.labels import MISSING, when
from ui.outage import as_of_text, fetch_known
from ui.run_text import dataset_names, dataset_text, model_name
from ui.run_view import show_run
from ui.runtime import service

user = require_user()
svc = service()
names = dataset_names(svc.known_dataset_names(user), svc.list_datasets(user))
run_id = st.query_params.get("run")

if run_id:
    if st.button("← All runs", key="back_to_runs"):
        del st.query_params["run"]
        st.rerun()
    show_run(svc, run_id, names)
    st.stop()

st.title("Runs")
# while Temporal cannot be reached: the list this app last read, and the runs the registry holds
got = fetch_known("list of runs", lambda: svc.list_runs(user), lambda: svc.known_runs(user))
if got is not None:
    runs, known = got
    if known is not None:
        st.caption(as_of_text(known))
    if not runs:
        st.info("No runs yet. Start one on the Train page.")
        st.page_link(st.session_state["pages"]["train"], label="Train a model", icon=":material/play_arrow:")
        st.stop()
    table = pd.DataFrame(
        [
            {
                "status": r.status.replace("_", " "),
                "model": model_name(r.model),
                "dataset": dataset_text(names, r.dataset_id),
                "started": when(r.started_at),
                "duration (s)": None if r.duration_s is None else round(r.duration_s, 1),
                "run": r.run_id,
            }
            for r in runs
        ]
    )
    st.caption("Select a row to open the run.")
    picked = st.dataframe(
        table, hide_index=True, on_select="rerun", selection_mode="single-row", key="runs_table", placeholder=MISSING
    )
    if picked.selection.rows:
        st.query_params["run"] = runs[picked.selection.rows[0]].run_id
        st.rerun()
