"""The live view of one run: polled in a fragment while the run is going, still once it has finished."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ml.catalog import MODELS
from orchestration.contracts import STAGE_LABELS
from orchestration.service import NotFound, RunView
from ui.runtime import SyncService, current_user, guard

POLL_SECONDS = 2.0
STATUS_ICONS = {"running": "🔄", "completed": "✅", "failed": "❌", "cancelled": "⏹️", "terminated": "⏹️",
                "timed_out": "⌛"}
STAGE_ICONS = {"pending": "·", "running": "▶", "done": "✓", "failed": "✗", "cancelled": "■"}


def model_label(key: str) -> str:
    return MODELS[key].label if key in MODELS else key


def show_run(svc: SyncService, run_id: str, dataset_names: dict[str, str]) -> None:
    user = current_user()
    try:
        view = svc.get_run(user, run_id)
    except NotFound:
        st.error("Run not found. It may belong to another user, or the link is wrong.")
        return
    running = view.running

    @st.fragment(run_every=POLL_SECONDS if running else None)
    def live() -> None:
        with guard("Reading the run"):
            current = svc.get_run(user, run_id)
            _draw(current, dataset_names)
            if running and not current.running:
                st.rerun()  # a full rerun re-declares the fragment without run_every: polling stops

    live()
    if running and st.button("Cancel run", key="cancel_run", type="secondary"):
        with guard("Cancelling"):
            svc.cancel_run(user, run_id)
            st.toast("Cancellation requested.")
            st.rerun()


def _draw(view: RunView, dataset_names: dict[str, str]) -> None:
    st.subheader(f"{STATUS_ICONS.get(view.status, '')} {model_label(view.model)}")
    st.caption(f"Dataset **{dataset_names.get(view.dataset_id, view.dataset_id)}** · target **{view.target or '…'}** "
               f"· run `{view.run_id}`")
    cols = st.columns(4)
    cols[0].metric("Status", view.status.replace("_", " "), border=True)
    cols[1].metric("Stage", STAGE_LABELS.get(view.stage, "Finished" if view.stage == "done" else view.stage),
                   border=True)
    cols[2].metric("Elapsed", f"{view.duration_s:.1f} s" if view.duration_s is not None else "–", border=True)
    cols[3].metric("Attempt", view.attempt, border=True)
    if view.waiting_for_worker:
        st.warning("Waiting for a worker: no worker process is picking up this run right now. "
                   "It will start as soon as one is running (`make run` starts them).")
    detail = ""
    if view.running and view.live.get("of", 0) > 1:
        detail = f" · step {view.live['step']} of {view.live['of']}"
    st.progress(min(view.percent, 100.0) / 100, text=f"{view.percent:.0f}%{detail}")
    if view.last_failure and view.running:
        st.info(f"Retrying after an error: {view.last_failure}")
    if view.error:
        st.error(f"The run failed: {view.error}")

    stages = pd.DataFrame([{
        "stage": STAGE_LABELS[s.name], "status": f"{STAGE_ICONS[s.status]} {s.status}",
        "seconds": None if s.seconds is None else round(s.seconds, 2), "attempt": s.attempt or None,
    } for s in view.stages])
    left, right = st.columns([2, 3])
    left.dataframe(stages, hide_index=True, key="stages_table")
    timed = [s for s in view.stages if s.seconds is not None]
    if timed:
        fig = go.Figure(go.Bar(x=[s.seconds for s in timed], y=[STAGE_LABELS[s.name] for s in timed],
                               orientation="h", marker_color="#4C78A8"))
        fig.update_layout(title="Time per stage (s)", height=260, margin=dict(l=10, r=10, t=40, b=10),
                          yaxis=dict(autorange="reversed"))
        right.plotly_chart(fig, key="stage_chart", width="stretch")

    if view.metrics:
        st.subheader("Test-set metrics")
        mcols = st.columns(len(view.metrics))
        for col, (name, value) in zip(mcols, view.metrics.items()):
            col.metric(name.replace("_", " "), f"{value:.4f}", border=True)
    facts = {k: v for k, v in view.facts.items() if k in ("used_rows", "dropped_missing_target", "train_rows",
                                                          "test_rows", "cpu_seconds", "peak_rss_mb")}
    if facts:
        st.caption(" · ".join(f"{k.replace('_', ' ')}: {v}" for k, v in facts.items()))
