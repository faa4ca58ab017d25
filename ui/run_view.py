"""The live view of one run: polled in a fragment while the run is going, still once it has finished.

Values read back from Temporal (search attributes, workflow results, queries, heartbeat details) are
not trusted: whoever can start a workflow can plant any text there. Wherever Streamlit renders
markdown (subheaders, captions, labels, progress and alert texts) they go through `md()`, and a
model key shows only as its catalog label, never as markdown of its own.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from orchestration.contracts import STAGE_LABELS
from orchestration.evaluation_view import Evaluation
from orchestration.known_views import Known
from orchestration.views import RunView
from ui import charts
from ui.auth import require_user
from ui.labels import MISSING, metric_name
from ui.outage import as_of_text, fetch_known, launch_blocked, show_blocked
from ui.run_text import (
    FACTS,
    STAGE_CARD,
    STATUS_STYLE,
    dataset_text,
    fact_text,
    fmt_left,
    fmt_metric,
    fmt_seconds,
    frozen_label,
    model_label,
    param_text,
    stage_rows,
    worker_wait_text,
)
from ui.runtime import guard
from ui.sync_service import SyncService
from ui.temporal_link import temporal_link
from ui.text import md

POLL_SECONDS = 2.0


def show_run(svc: SyncService, run_id: str, dataset_names: dict[str, str]) -> None:
    user = require_user()

    def read() -> tuple[RunView, Known[RunView] | None] | None:  # while Temporal is down: what is known, at once
        return fetch_known("run", lambda: svc.get_run(user, run_id), lambda: svc.known_run(user, run_id))

    got = read()
    if got is None:
        return
    view, _ = got
    running = view.running

    first = [got]  # the fragment's first run (inline, in this full run) draws this read: one read per page load

    @st.fragment(run_every=POLL_SECONDS if running else None)
    def live() -> None:
        now = first.pop() if first else read()
        if now is None:
            return
        current, known = now
        if known is not None:  # the one mark of an answer from memory (the banner says why)
            st.caption(f":material/cloud_off: {as_of_text(known)}")
        _draw_status(current, dataset_names, from_memory=known is not None)
        if running and not current.running:
            st.rerun()  # a full rerun re-declares the fragment without run_every: polling stops

    live()
    _draw_request(view, dataset_names)
    temporal_link(view.temporal_url, user)
    if running:
        blocked = launch_blocked(svc)
        show_blocked(blocked)
        if st.button("Cancel run", key="cancel_run", disabled=bool(blocked)):
            with guard("Cancelling"):
                svc.cancel_run(user, run_id)
                st.toast("Cancellation requested.")
                st.rerun()
        return
    _draw_results(view, svc.get_evaluation(user, run_id))


def _draw_request(view: RunView, dataset_names: dict[str, str]) -> None:
    """What the run was started with: dataset, target, split, seed, folds and the model's parameters."""
    req = view.request
    if req is None:
        return
    with st.container(border=True, key="run_parameters"):
        st.markdown("**Parameters**")
        split = f"{req.test_size:.0%}" if isinstance(req.test_size, (int, float)) else md(req.test_size)
        folds = f"{md(req.cv_folds)}-fold cross-validation" if req.cv_folds else "no cross-validation"
        st.caption(
            f"Dataset **{md(dataset_text(dataset_names, req.dataset_id))}** · target **{md(req.target)}** "
            f"· test rows {split} · seed {md(req.seed)} · {folds}"
        )
        params = req.params if isinstance(req.params, dict) else {}
        if params:
            st.dataframe(
                pd.DataFrame(
                    {
                        "parameter": [str(k) for k in params],
                        "value": [param_text(req.model, str(k), v) for k, v in params.items()],
                    }
                ),
                hide_index=True,
                key="params_table",
            )
        else:
            st.caption("The model's default parameters.")


def _draw_status(view: RunView, dataset_names: dict[str, str], from_memory: bool = False) -> None:
    """`from_memory`: the view is what was last read (Temporal cannot be reached): live numbers say so, greyed."""
    icon, color = STATUS_STYLE.get(view.status, (None, "gray"))
    st.subheader(model_label(view.model))
    st.badge(view.status.replace("_", " "), icon=icon, color=color)
    st.caption(
        f"Dataset **{md(dataset_text(dataset_names, view.dataset_id))}** · target **{md(view.target or '…')}** "
        f"· run `{view.run_id}`"
    )
    cols = st.columns([2, 1, 1, 1])  # the stage's name needs the room; the others are short numbers
    stage = STAGE_CARD.get(view.stage) or md(view.stage)
    cols[0].metric("Stage", stage, border=True)
    frozen = from_memory and view.running
    with cols[1].container(key="frozen_elapsed" if frozen else None):
        st.metric(frozen_label("Elapsed", frozen), fmt_seconds(view.duration_s), border=True)
    with cols[2].container(key="frozen_time_left" if frozen else None):
        st.metric(
            frozen_label("Stage time left", frozen),
            fmt_left(view.eta_s) if view.running else "–",
            border=True,
            help="For the stage under way, at the pace its steps have gone so far (none until one has finished); "
            "the stages after it are not counted.",
        )
    if frozen:  # greyed: numbers that would otherwise look live
        st.html("<style>.st-key-frozen_elapsed, .st-key-frozen_time_left { opacity: 0.55; }</style>")
    if view.running:
        cols[3].metric("Attempt", view.attempt, border=True)
    else:
        cols[3].metric("Attempts", view.attempt, border=True, help="The most any stage needed.")
    if view.rereading:
        st.info(
            "Re-reading the run's status: the worker that keeps it is not answering right now (it may have "
            "stopped; another takes the run over if one is running). Shown as last seen."
        )
    if view.waiting_for_worker:
        st.warning(worker_wait_text(view))
    detail = f" · {md(view.detail)}" if view.detail else ""
    st.progress(min(view.percent, 100.0) / 100, text=f"{view.percent:.0f}%{detail}")
    if view.last_failure and view.running:
        st.info(f"Attempt {view.attempt} after an error: {md(view.last_failure)}")
    if view.error:
        st.error(f"The run failed: {md(view.error)}")

    stages = stage_rows(view)
    left, right = st.columns([2, 3])
    left.dataframe(stages, hide_index=True, key="stages_table", placeholder=MISSING)
    curve = charts.learning_curve(view.curve, charts.size_axis(view.request.model if view.request else None))
    if curve is not None:
        right.plotly_chart(curve, key="curve_chart", width="stretch")
        if (caption := charts.curve_rows_text(view.curve)) is not None:
            right.caption(caption)
    else:
        timed = [(STAGE_LABELS[s.name], s.seconds) for s in view.stages if s.seconds is not None]
        if timed:
            right.plotly_chart(charts.stage_times(timed), key="stage_chart", width="stretch")
    if view.metrics:
        st.subheader("Test-set metrics")
        mcols = st.columns(len(view.metrics))
        for col, (name, value) in zip(mcols, view.metrics.items()):
            col.metric(md(metric_name(name)), fmt_metric(value), border=True)


def _draw_results(view: RunView, ev: Evaluation | None) -> None:
    facts = view.facts
    notes = [*(facts.notes or []), *(facts.fit_notes or [])]
    if notes:
        st.info("\n".join(f"- {md(n)}" for n in notes))
    if facts.cv:
        st.subheader("Cross-validation (training rows)")
        st.dataframe(
            pd.DataFrame(
                [
                    {"metric": metric_name(k), "mean": round(v["mean"], 4), "± std": round(v["std"], 4)}
                    for k, v in facts.cv.items()
                ]
            ),
            hide_index=True,
            key="cv_table",
        )
    costs = [fact_text(name, value) for name in FACTS if (value := getattr(facts, name, None)) is not None]
    if costs:
        st.caption(" · ".join(md(c) for c in costs))
    if not ev:
        return
    left, right = st.columns(2)
    if ev.confusion:  # a classifier's
        left.plotly_chart(charts.confusion(ev), key="confusion_chart", width="stretch")
        if ev.roc:
            right.plotly_chart(charts.roc(ev), key="roc_chart", width="stretch")
            left.plotly_chart(charts.precision_recall(ev), key="pr_chart", width="stretch")
    elif ev.actual:  # a regressor's
        left.plotly_chart(charts.predicted_vs_actual(ev), key="pva_chart", width="stretch")
        right.plotly_chart(charts.residuals(ev), key="residual_chart", width="stretch")
    if ev.importance:
        (right if ev.confusion and ev.roc else left).plotly_chart(
            charts.importance(ev.importance), key="importance_chart", width="stretch"
        )
