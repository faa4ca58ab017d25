"""The live view of one run: polled in a fragment while the run is going, still once it has finished.

Values read back from Temporal (search attributes, workflow results, queries, heartbeat details) are
not trusted: whoever can start a workflow can plant any text there. Wherever Streamlit renders
markdown (subheaders, captions, labels, progress and alert texts) they go through `md()`, and a
model key shows only as its catalog label, never as markdown of its own.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
import streamlit as st

from ml.catalog import MODELS
from orchestration.contracts import STAGE_LABELS
from orchestration.evaluation_view import Evaluation
from orchestration.known_views import Known
from orchestration.views import RunView
from ui import charts
from ui.auth import require_user
from ui.labels import MISSING, metric_name
from ui.outage import as_of_text, fetch_known, launch_blocked, show_blocked
from ui.runtime import guard
from ui.sync_service import SyncService
from ui.temporal_link import temporal_link
from ui.text import md

POLL_SECONDS = 2.0
# (Material icon, badge colour) per status: icons render everywhere, unlike emoji on font-poor machines
BadgeColor = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray", "grey", "primary"]
STATUS_STYLE: dict[str, tuple[str | None, BadgeColor]] = {
    "running": (":material/sync:", "blue"),
    "completed": (":material/check_circle:", "green"),
    "failed": (":material/error:", "red"),
    "cancelled": (":material/stop_circle:", "gray"),
    "terminated": (":material/stop_circle:", "gray"),
    "timed_out": (":material/timer_off:", "orange"),
}
STAGE_ICONS = {"pending": "·", "running": "▶", "done": "✓", "skipped": "–", "failed": "✗", "cancelled": "■"}
# the stage card's value: short enough for the card at any width the page lays columns out in
STAGE_CARD = {
    "load": "Load data",
    "preprocess": "Preprocess",
    "cv": "Cross-validation",
    "fit": "Fit",
    "evaluate": "Evaluate",
    "save": "Save",
    "done": "Finished",
}


# the results caption: each fact a run records, as a user reads it (a label, and how to show the value)
FACTS = {
    "used_rows": ("rows used", "{:,}"),
    "train_rows": ("training rows", "{:,}"),
    "test_rows": ("test rows", "{:,}"),
    "fit_seconds": ("fit time", "{:.1f} s"),
    "cpu_seconds": ("CPU time", "{:.1f} s"),
    "peak_rss_mb": ("peak memory", "{:.0f} MB"),
    "model_version": ("model version", "v{}"),
}
CLOSED_EARLY = ("cancelled", "failed", "terminated", "timed_out")  # a run whose later stages never ran


def dataset_text(dataset_names: dict[str, str], dataset_id: object) -> str:
    """Plain text: the dataset's name (a deleted one's marked so by the page), else "a deleted dataset"."""
    name = dataset_names.get(str(dataset_id))
    return name if name else f"a deleted dataset (id {str(dataset_id)[:8]})" if dataset_id else "…"


def param_text(model: object, name: str, value: object) -> str:
    """A parameter's value as the form names it: 0 for max_depth is "0 (unlimited)"."""
    spec = MODELS.get(model) if isinstance(model, str) else None
    param = next((p for p in spec.params if p.name == name), None) if spec else None
    if param is not None and param.none_label and value == 0:
        return f"0 ({param.none_label})"
    return str(value)


def fact_text(name: str, value: object) -> str:
    label, fmt = FACTS.get(name, (name.replace("_", " "), "{}"))
    try:
        return f"{label}: {fmt.format(value)}"
    except (TypeError, ValueError):
        return f"{label}: {value}"


def stage_rows(view: RunView) -> pd.DataFrame:
    """The stages table: a stage not run has empty cells, and after a cancel or a failure the stages that
    never started say "not run" (not "pending": nothing will run them)."""
    closed_early = view.status in CLOSED_EARLY
    rows: list[dict[str, object]] = []
    for s in view.stages:
        never = closed_early and s.status == "pending"
        rows.append(
            {
                "stage": STAGE_LABELS[s.name],
                "status": "– not run" if never else f"{STAGE_ICONS.get(s.status, '·')} {s.status}",
                "seconds": float("nan") if s.seconds is None else round(s.seconds, 2),
            }
        )
    stages = pd.DataFrame(rows, columns=["stage", "status", "seconds"])
    # one type per column (Arrow cannot hold ints and None/strings together): 0 = not run, shown empty
    attempts = [s.attempt if isinstance(s.attempt, int) and s.attempt > 0 else None for s in view.stages]
    stages["attempt"] = pd.array(attempts, dtype="Int64")
    return stages


def model_name(key: object) -> str:
    """Plain text (dataframes, CSV, charts, which escape it themselves): the catalog label of a known
    model key, else the key as it is."""
    return MODELS[key].label if isinstance(key, str) and key in MODELS else str(key)


def model_label(key: object) -> str:
    """Markdown-safe: the catalog label of a known model key (constant, plain text), else the key
    escaped, so a planted search attribute cannot draw headings, colours or links."""
    return MODELS[key].label if isinstance(key, str) and key in MODELS else md(key)


def worker_wait_text(view: RunView) -> str:
    """Why a running run does not move: no worker is picking it up. One that had started goes on from its last
    finished stage when a worker runs again; one that had not starts then."""
    if view.started:
        return (
            "Waiting for a worker: no worker process is picking up this run right now. It continues where it "
            "was as soon as a worker is running again (`make run` starts them)."
        )
    return (
        "Waiting for a worker: no worker process is picking up this run right now. "
        "It will start as soon as one is running (`make run` starts them)."
    )


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


def _fmt_metric(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else md(value)


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _fmt_left(s: float | None) -> str:
    if s is None:
        return "–"
    return "a moment" if s < 1 else f"~{_fmt_seconds(s)}"


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


def frozen_label(label: str, frozen: bool) -> str:
    """A live number's label; while it is only what was last read (the page's "As of" line says when), says so."""
    return f"{label} (when last read)" if frozen else label


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
        st.metric(frozen_label("Elapsed", frozen), _fmt_seconds(view.duration_s), border=True)
    with cols[2].container(key="frozen_time_left" if frozen else None):
        st.metric(
            frozen_label("Stage time left", frozen),
            _fmt_left(view.eta_s) if view.running else "–",
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
    curve = charts.learning_curve(view.curve)
    if curve is not None:
        right.plotly_chart(curve, key="curve_chart", width="stretch")
    else:
        timed = [(STAGE_LABELS[s.name], s.seconds) for s in view.stages if s.seconds is not None]
        if timed:
            right.plotly_chart(charts.stage_times(timed), key="stage_chart", width="stretch")
    if view.metrics:
        st.subheader("Test-set metrics")
        mcols = st.columns(len(view.metrics))
        for col, (name, value) in zip(mcols, view.metrics.items()):
            col.metric(md(metric_name(name)), _fmt_metric(value), border=True)


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
