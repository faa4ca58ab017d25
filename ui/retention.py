"""Keep-last-N retention on the Models page: a preview of exactly what would be deleted, then confirm or cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import streamlit as st

from core.accounts import User
from core.model_record import ModelRecord
from core.retention import MAX_KEEP, RetentionPlan
from orchestration.contracts import PRIMARY_METRIC
from ui.labels import metric_name, size
from ui.runtime import guard
from ui.sync_service import SyncService
from ui.text import md

PLAN = "retention_plan"  # session state: the preview on screen, until confirmed or cancelled
DONE = "retention_done"  # session state: what the last confirmation deleted, shown once after the rerun


def age_text(created_at: str, now: datetime) -> str:
    """How long ago an ISO time was, in the largest whole unit: "40 s", "12 min", "5 h", "3 days"."""
    try:
        then = datetime.fromisoformat(created_at)
    except ValueError:
        return "?"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int((now - then).total_seconds()))
    for unit, span in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= span:
            return f"{seconds // span} {unit}"
    return f"{seconds} s"


def kb(n: int) -> str:
    return size(n)


def _score(r: ModelRecord) -> float | None:
    return r.metrics.get(PRIMARY_METRIC.get(r.task, ""))


def best_at_risk(models: list[ModelRecord], doomed: tuple[ModelRecord, ...]) -> set[int]:
    """Ids of the doomed versions that hold their lineage's best score, with no version that stays scoring
    as well: deleting them loses the best model of that dataset, target and model."""
    gone = {r.id for r in doomed}
    best: dict[tuple[str, str, str], float] = {}
    kept: dict[tuple[str, str, str], float] = {}
    for m in models:
        score = _score(m)
        if score is None:
            continue
        best[m.lineage] = max(score, best.get(m.lineage, score))
        if m.id not in gone:
            kept[m.lineage] = max(score, kept.get(m.lineage, score))
    return {
        r.id
        for r in doomed
        if (score := _score(r)) is not None and score == best.get(r.lineage) and score > kept.get(r.lineage, float("-inf"))
    }


def preview_rows(
    records: tuple[ModelRecord, ...],
    now: datetime,
    at_risk: set[int] | None = None,
    dataset_names: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per version: what it is, what it was trained on, how good it is and how old; and a warning
    on a version whose deletion loses its lineage's best score (`at_risk`, from best_at_risk). Text is
    escaped: st.table renders Markdown, and dataset and column names are the user's."""
    rows = []
    for r in records:
        metric = PRIMARY_METRIC.get(r.task, "")
        score = _score(r)
        rows.append(
            {
                "model": md(r.name),
                "version": r.version,
                "dataset": md((dataset_names or {}).get(r.dataset_id) or r.dataset_name),
                "target": md(r.target),
                "metric": md(metric_name(metric)),
                "score": "" if score is None else f"{score:.4g}",
                "age": age_text(r.created_at, now),
                "size": size(r.size_bytes),
                "note": f"best score: {score:.3g} — will be deleted" if score is not None and r.id in (at_risk or ()) else "",
            }
        )
    return rows


def retention_section(
    svc: SyncService, user: User, models: list[ModelRecord], names: dict[int, str], dataset_names: dict[str, str]
) -> None:
    """The retention form: choose N, preview, then delete exactly the previewed versions or cancel.
    `models`: all the user's (to find each lineage's best score); `names`: model id -> its unique name;
    `dataset_names`: dataset id -> its unique name."""
    st.markdown("**Retention**: keep the newest versions of each model, counted per dataset and target")
    done = st.session_state.pop(DONE, None)
    if done:
        st.success(done)
    keep = int(
        st.number_input(
            "Versions to keep of each model, per dataset and target", 1, MAX_KEEP, svc.keep_last(user) or 3, key="retention_keep"
        )
    )
    st.caption(
        "Tagged versions (such as the best of a batch) and the last version of each model for a dataset and "
        "target are always kept: to keep another one, such as the best-scoring, tag it under One model. "
        "Nothing is deleted until you confirm the preview."
    )
    if st.button("Preview retention", key="retention_preview"):
        with guard("The retention preview"):
            st.session_state[PLAN] = svc.retention_preview(user, keep)
    plan: RetentionPlan | None = st.session_state.get(PLAN)
    if plan is None:
        return
    if plan.keep_last != keep:
        st.info("The number of versions changed: preview again to see what it would delete.")
        return
    if plan.tagged:
        st.caption(
            "Kept because they are tagged: "
            + ", ".join(f"{md(names.get(r.id, r.label))} ({md(', '.join(r.tags))})" for r in plan.tagged)
        )
    if not plan.delete:
        st.success(f"Nothing to delete: no model has more than {keep} untagged version(s) for a dataset and target.")
        if st.button("Close the preview", key="retention_close"):
            st.session_state.pop(PLAN, None)
            st.rerun()
        return
    st.warning(
        f"Keeping the last {keep} would delete these {len(plan.delete)} version(s), {kb(plan.size_bytes)} in all. "
        "Nothing has been deleted yet."
    )
    rows = preview_rows(plan.delete, datetime.now(UTC), best_at_risk(models, plan.delete), dataset_names)
    best = sum(bool(r["note"]) for r in rows)
    if best:
        st.warning(
            f"{best} of them {'is' if best == 1 else 'are'} the best-scoring version of {'its' if best == 1 else 'their'} "
            "model for that dataset and target (see the note). To keep one, cancel, tag it under One model, and "
            "preview again."
        )
    st.table(rows, hide_index=True)
    confirm, cancel = st.columns(2)
    if confirm.button(f"Delete these {len(plan.delete)} version(s)", type="primary", key="retention_confirm"):
        st.session_state.pop(PLAN, None)  # a refusal means the models changed: the user previews again
        with guard("Applying retention"):
            result = svc.apply_retention(user, keep, plan.ids)
            st.session_state.pop("prediction", None)  # it may have been made with a deleted version
            st.session_state[DONE] = f"Deleted {len(result.deleted)} version(s); {kb(result.freed_bytes)} freed."
            st.rerun()
    if cancel.button("Cancel, delete nothing", key="retention_cancel"):
        st.session_state.pop(PLAN, None)
        st.rerun()
