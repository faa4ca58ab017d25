"""A fit that stops at its iteration limit before converging says so on the run page, in plain words (the
ConvergenceWarning used to reach only the worker's log)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest
from temporalio.testing import ActivityEnvironment

from core.datasets import ingest_csv
from core.names import new_run_id
from core.storage import Storage
from orchestration.contracts import RunFacts, TrainInput, TrainRequest
from orchestration.training_activities import TrainingActivities
from tests.helpers import classification_csv


def _fit(tmp_path, model: str, params: dict) -> RunFacts:
    storage = Storage(tmp_path)
    info = ingest_csv(storage, "alice", classification_csv(rows=300), "shop.csv", 1 << 22)
    inp = TrainInput(new_run_id("train", "alice"), TrainRequest("alice", info.dataset_id, "bought", model, params, 3))
    acts, env = TrainingActivities(storage), ActivityEnvironment()
    env.run(acts.preprocess_split, inp)
    return env.run(acts.fit_model, inp).facts


def test_an_mlp_stopped_at_max_iter_leaves_a_note(tmp_path):
    facts = _fit(tmp_path, "mlp_classifier", {"max_iter": 5, "hidden_units": 4})
    assert facts.fit_notes == [
        "The network stopped at max_iter=5 before converging, so it may fit worse than it could. Raise max_iter."
    ]


def test_a_fit_that_converged_has_no_note(tmp_path):
    assert _fit(tmp_path, "gaussian_nb", {}).fit_notes is None
    assert _fit(tmp_path, "random_forest_classifier", {"n_estimators": 5}).fit_notes is None


def _finished_run_page() -> None:
    from orchestration.contracts import RunFacts
    from orchestration.views import RunView
    from ui.run_view import _draw_results

    facts = RunFacts(notes=["1 rows without a value for 'y' were left out."], fit_notes=["The network stopped at max_iter=5."])
    _draw_results(
        RunView("train-alice-" + "a" * 32, "completed", "mlp_classifier", "0" * 16, "y", None, 1.0, "done", 100.0, facts=facts),
        None,
    )


def test_the_run_page_shows_the_fit_notes_with_the_others():
    at = AppTest.from_function(_finished_run_page, default_timeout=30).run()
    assert not at.exception, at.exception
    (note,) = [e.value for e in at.info]
    assert "left out" in note and "The network stopped at max\\_iter=5" in note
