"""Predict on the Models page: predictions stay on screen only for the model and file that made them.

A different model, a new (or removed) file, or a refused file clears them and their download button, so
a user cannot download predictions that belong to other inputs. Also the model's downloads and the
"load it yourself" lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.accounts import User
from core.model_record import ModelRecord
from orchestration.contracts import PredictResult
from ui.load_snippet import load_snippet
from ui.outage import launch_blocked, show_blocked
from ui.runtime import guard
from ui.sync_service import SyncService
from ui.text import md

STATE = "prediction"  # the session key (the delete button clears it too)


@dataclass(frozen=True)
class HeldPrediction:
    """Predictions and the inputs that made them."""

    model_id: int
    file_id: str
    filename: str
    result: PredictResult


def current(model_id: int, file_id: str | None) -> HeldPrediction | None:
    """The held predictions if they were made by this model on this file; otherwise they are dropped."""
    held = st.session_state.get(STATE)
    if isinstance(held, HeldPrediction) and (held.model_id, held.file_id) == (model_id, file_id):
        return held
    st.session_state.pop(STATE, None)
    return None


def show_downloads(svc: SyncService, user: User, model: ModelRecord) -> None:
    """The model file, its card, and how to load the file without TrainEasy."""
    stem = f"{model.name}-v{model.version}"
    # the files are read only when a download is clicked, not on every rerun of the page
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download model (.skops)",
        lambda: svc.model_download(user, model.id)[0],
        f"{stem}.skops",
        "application/octet-stream",
        key="download_model",
    )
    c2.download_button(
        "Download model card (.json)",
        lambda: svc.model_download(user, model.id)[1],
        f"{stem}.json",
        "application/json",
        key="download_card",
    )
    with st.expander("Load it yourself, without TrainEasy"):
        snippet = load_snippet(model, f"{stem}.skops")
        if snippet is None:
            st.info(
                "This model was saved by an earlier version of TrainEasy and needs TrainEasy to load. "
                "Train it again to get a file that loads with scikit-learn and skops alone."
            )
            return
        st.markdown("Install the library versions the model was saved with:")
        st.code(snippet.install, language="bash")
        st.markdown(
            "Then load the downloaded file and predict on a CSV of new rows. skops asks you to trust the few "
            "library types listed: check them before you load a file from anyone else."
        )
        st.code(snippet.python, language="python")


def show_predict(svc: SyncService, user: User, model: ModelRecord) -> None:
    st.markdown("**Predict** with this model")
    upload = st.file_uploader("CSV with the same columns as the training data", type=["csv"], key="predict_file")
    held = current(model.id, upload.file_id if upload is not None else None)
    blocked = launch_blocked(svc)  # a worker predicts, through Temporal
    show_blocked(blocked)
    if st.button("Predict", key="predict_button", disabled=upload is None or bool(blocked)) and upload is not None:
        st.session_state.pop(STATE, None)  # a refusal must not leave the previous predictions on screen
        held = None
        with st.spinner("A worker is predicting…"), guard("Prediction"):
            result = svc.predict(user, model.id, upload.name, upload.getvalue())
            held = HeldPrediction(model.id, upload.file_id, upload.name, result)
            st.session_state[STATE] = held
    if held is None:
        return
    result = held.result
    st.success(md(f"{result.rows:,} predictions with {result.model}. Input file: {held.filename}."))
    for note in result.notes:
        st.info(md(note))
    st.dataframe(pd.DataFrame(result.preview), hide_index=True, key="prediction_preview")
    st.download_button(
        "Download predictions (.csv)",
        lambda: svc.prediction_file(user, result.file),
        f"predictions-{model.name}-v{model.version}.csv",
        "text/csv",
        key="download_predictions",
    )
