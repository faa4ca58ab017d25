"""The live view of a batch: per-model progress, a leaderboard that fills in, charts, and the controls."""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd
import streamlit as st

from core.accounts import User
from core.csvsafe import frame_to_csv
from ml.catalog import MODELS
from orchestration.contracts import BatchProgress
from orchestration.known_views import Known
from orchestration.views import BatchView
from ui import charts
from ui.auth import require_user
from ui.labels import MISSING, metric_name
from ui.outage import as_of_text, fetch_known, launch_blocked, show_blocked
from ui.run_text import STATUS_STYLE, dataset_names, dataset_text, model_label, model_name
from ui.run_view import POLL_SECONDS
from ui.runtime import audit, guard
from ui.sync_service import SyncService
from ui.temporal_link import temporal_link
from ui.text import md

PHASES = {
    "running": "running",
    "awaiting": "finished with failures: retry them or finish",
    "stopping": "stopping",
    "done": "done",
    "cancelled": "cancelled",
}


def child_label(model: str, params: dict, swept: list[str] | None) -> str:
    """A sweep's trials are told apart by the parameters that vary; other batches by model. Plain text
    (read back from the workflow): pass it through md() before drawing it as markdown."""
    if not swept:
        return model_name(model)
    return ", ".join(f"{k}={params[k]:g}" if isinstance(params.get(k), float) else f"{k}={params.get(k)}" for k in swept)


def child_labels(children: list, swept: list[str] | None) -> dict[int, str]:
    """Child index -> its label, unique in the batch: configurations that share one (the same model
    twice, or one trial drawn twice) are told apart by their number, so no chart adds two runs together."""
    labels = {c.index: child_label(c.model, c.params, swept) for c in children}
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {i: f"{label} #{number(i)}" if counts[label] > 1 else label for i, label in labels.items()}


def number(index: object) -> str:
    """A configuration's number as the pages show it, from 1 (its index in the batch is from 0); plain text."""
    return str(index + 1) if isinstance(index, int) and not isinstance(index, bool) else str(index)


def zero_means(model: object) -> dict[str, str]:
    """The model's parameters whose 0 means "no limit" (max_depth), with the word the form shows for it."""
    spec = MODELS.get(model) if isinstance(model, str) else None
    return {p.name: p.none_label for p in spec.params if p.none_label} if spec else {}


def swept_params(progress: BatchProgress) -> list[str] | None:
    if not progress.sweep:
        return None
    keys = sorted({k for c in progress.children for k in c.params})
    return [k for k in keys if len({repr(c.params.get(k)) for c in progress.children}) > 1] or keys


def show_batch(svc: SyncService, batch_id: str) -> None:
    user = require_user()

    def read() -> tuple[BatchView, Known[BatchView] | None] | None:  # while Temporal is down: the last view read
        return fetch_known("batch", lambda: svc.get_batch(user, batch_id), lambda: svc.known_batch(user, batch_id))

    got = read()
    if got is None:
        return
    view, _ = got
    names = dataset_names(svc.known_dataset_names(user), svc.list_datasets(user))
    live = _polling(view)

    @st.fragment(run_every=POLL_SECONDS if live else None)
    def panel() -> None:
        now = read()
        if now is None:
            return
        current, known = now
        if known is not None:
            st.caption(f":material/cloud_off: {as_of_text(known)}")
        with guard("Drawing the batch"):
            _draw(current, user, names)
        if live and not _polling(current):
            st.rerun()  # stop polling; show the final controls

    panel()
    temporal_link(view.temporal_url, user)
    _controls(svc, view)


def _polling(view: BatchView) -> bool:
    """Watch while the batch runs (not while it waits for a decision), and while a closed batch's children
    are still being cancelled, until each one's state is final."""
    return view.settling or (view.running and (view.progress is None or view.progress.phase != "awaiting"))


def _controls(svc: SyncService, view: BatchView) -> None:
    user, progress = require_user(), view.progress
    if not view.running:
        return
    blocked = launch_blocked(svc)  # every control signals or cancels through Temporal
    show_blocked(blocked)
    edits: dict[int, dict | None] = {}  # None: not valid JSON (retrying is disabled until it is)
    if progress is not None and progress.phase == "awaiting":
        st.markdown("**Failed configurations**: retry them as they are, or edit their parameters first (JSON).")
        for c in (c for c in progress.children if c.status == "failed"):
            raw = st.text_input(
                f"\\#{md(number(c.index))} {model_label(c.model)}: {md(c.error)}",
                json.dumps(c.params),
                key=f"retry_params_{c.index}_{c.attempts}",
            )
            try:
                edits[c.index] = json.loads(raw)
            except json.JSONDecodeError:
                st.error(f"\\#{md(number(c.index))}: the parameters are not valid JSON.")
                edits[c.index] = None
    cols = st.columns(4)
    with guard("That action"):
        if progress is not None and progress.phase == "awaiting":
            if cols[0].button(
                "Retry failed", type="primary", key="batch_retry", disabled=None in edits.values() or bool(blocked)
            ):
                svc.retry_failed(user, view.batch_id, {i: p for i, p in edits.items() if p is not None})
                st.rerun()
            if cols[1].button("Finish with what succeeded", key="batch_finish", disabled=bool(blocked)):
                svc.finish_batch(user, view.batch_id)
                st.rerun()
        elif cols[0].button(
            "Stop and keep the best",
            key="batch_stop",
            help="Cancel running children; finished ones and the leaderboard stay.",
            disabled=bool(blocked),
        ):
            svc.stop_batch(user, view.batch_id)
            st.rerun()
        if cols[3].button("Cancel batch", key="batch_cancel", help="Cancel every child now.", disabled=bool(blocked)):
            svc.cancel_batch(user, view.batch_id)
            st.rerun()


def leaderboard_table(board: list[dict], label_of: dict, admin: bool = False) -> pd.DataFrame:
    """One row per finished configuration, best first, under its unique label; scores under the names the
    metric cards use, a score a model does not have left missing (drawn empty); the worker only for admins."""
    scores = list(dict.fromkeys(k for r in board for k, v in r.items() if isinstance(v, float) and k != "seconds"))
    rows = []
    for r in board:
        row = {"": "★" if r["best"] else "", "rank": r["rank"], "configuration": label_of[r["run_id"]]}
        row |= {metric_name(k): round(r[k], 4) if isinstance(r.get(k), float) else float("nan") for k in scores}
        row |= {"seconds": round(r["seconds"] or 0, 1)}
        if admin:
            row |= {"worker": r["worker"]}
        rows.append(row | {"run": r["run_id"]})
    return pd.DataFrame(rows)


def leaderboard_csv(table: pd.DataFrame, batch_id: str, user: User) -> Callable[[], bytes]:
    """The leaderboard file (formula-safe), built when the user clicks Download, which is audited then."""

    def build() -> bytes:
        data = frame_to_csv(table)
        audit("download", f"leaderboard {batch_id}", user=user)
        return data

    return build


def badge_text(status: str, phase: str | None) -> str:
    """The batch's status, and its phase where that says more: "running · stopping", "completed · cancelled", but
    "running", not "running · running", and "completed", not "completed · done". A closed batch's status says it
    all (a phase only tells a running or a completed one apart). A badge escapes brackets itself (md() on top
    would undo that): only known phases are drawn."""
    shown = status.replace("_", " ")
    if (
        phase is None
        or status not in ("running", "completed")
        or (status, phase) in (("running", "running"), ("completed", "done"))
    ):
        return shown
    return f"{shown} · {PHASES.get(phase, 'unknown phase')}"


def _draw(view: BatchView, user: User, names: dict[str, str]) -> None:
    icon, color = STATUS_STYLE.get(view.status, (None, "gray"))
    progress = view.progress
    st.subheader("Batch")
    st.badge(badge_text(view.status, progress.phase if progress is not None else None), icon=icon, color=color)
    if progress is None:
        st.caption(f"`{view.batch_id}`")
        st.warning("Waiting for a worker to pick up this batch.")
        return
    st.caption(
        f"`{view.batch_id}` · {len(progress.children)} configurations on **{md(dataset_text(names, progress.dataset_id))}** "
        f"→ target **{md(progress.target)}** · at most {md(progress.max_parallel)} at once"
    )
    swept = swept_params(progress)
    labels = child_labels(progress.children, swept)
    for c in progress.children:
        pct = 100.0 if c.status == "completed" else view.child_percent.get(c.run_id or "", 0.0)
        text = f"{labels[c.index]} · {c.status.replace('_', ' ')}"
        if c.status == "running" and not view.running:
            text += " (being cancelled)"
        if c.worker and user.is_admin:  # which worker process ran it: for whoever runs the workers
            text += f" · worker {c.worker}"
        if c.error:
            text += f" · {c.error}"
        st.progress(pct / 100, text=md(text))

    board = view.leaderboard()
    metric = progress.primary_metric
    if not board:
        return
    index_of = {c.run_id: c.index for c in progress.children}
    label_of = {r["run_id"]: labels[index_of[r["run_id"]]] for r in board}
    st.subheader(f"Leaderboard (by {md(metric_name(metric))})")
    table = leaderboard_table(board, label_of, admin=user.is_admin)
    st.dataframe(
        table,
        hide_index=True,
        placeholder=MISSING,
        key="leaderboard",
        width="stretch",
        column_config={
            "rank": st.column_config.NumberColumn(width="small"),
            "configuration": st.column_config.TextColumn(width="medium"),
            "run": st.column_config.TextColumn(width="medium"),
        },
    )
    st.download_button(
        "Download leaderboard (.csv)",
        leaderboard_csv(table, view.batch_id, user),
        f"{view.batch_id}-leaderboard.csv",
        "text/csv",
        key="leaderboard_csv",
    )
    left, right = st.columns(2)
    left.plotly_chart(
        charts.metric_bars([(label_of[r["run_id"]], r[metric]) for r in board], metric_name(metric)),
        key="batch_metric_chart",
        width="stretch",
    )
    done = [c for c in progress.children if c.status == "completed"]
    for i, fig in enumerate(charts.curves_by_metric([(labels[c.index], c.curve) for c in done])):
        (right if i % 2 == 0 else left).plotly_chart(fig, key=f"batch_curves_{i}", width="stretch")
    if swept:
        fig = charts.parallel_coordinates(
            board, swept, metric, zero_means(board[0]["model"]) if board else None, metric_name(metric)
        )
        if fig is not None:
            st.plotly_chart(fig, key="sweep_parcoords", width="stretch")
