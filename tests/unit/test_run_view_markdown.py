"""ui.run_view / ui.batch_view / pages' model labels: text read back from Temporal (search attributes,
results, queries, heartbeats) never renders as markdown. The planted value is the hostile-user finding:
a Model search attribute that drew a red "session expired" heading with a live link on the Runs page."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from ml.catalog import MODELS
from ui.batch_view import child_label
from ui.run_text import model_label, model_name
from ui.text import md

PLANTED = ":red[**Your session expired.**] [Sign in again](https://evil.example/login)"
UNESCAPED = re.compile(r"(?<!\\)[\[\]*:]")  # markdown-active characters without their backslash


def _run_page(planted: str) -> None:
    from orchestration.contracts import RunFacts, StageHeartbeat, TrainRequest
    from orchestration.views import RunView
    from ui.run_view import _draw_request, _draw_results, _draw_status

    view = RunView(
        run_id="train-alice-" + "a" * 32,
        status="running",
        model=planted,
        dataset_id="0123456789abcdef",
        target=planted,
        started_at=None,
        duration_s=3.0,
        stage=planted,
        percent=40.0,
        metrics={planted: 0.5},
        live=StageHeartbeat(fold=1, of=5, part=planted),  # a heartbeat's only text (numbers are decoded as numbers)
        facts=RunFacts(model_version=planted, notes=[planted]),  # type: ignore[arg-type]  # hostile text where a number goes
        request=TrainRequest("alice", "0123456789abcdef", planted, planted, {planted: planted}, planted, planted, planted),  # type: ignore[arg-type]
    )
    _draw_status(view, {"0123456789abcdef": planted})
    _draw_request(view, {"0123456789abcdef": planted})
    _draw_results(view, None)


def _batch_page(planted: str) -> None:
    from core.accounts import User
    from orchestration.contracts import BatchProgress, ChildState
    from orchestration.views import BatchView
    from ui.batch_view import _draw

    children = [
        ChildState(
            index=0,
            model=planted,
            params={},
            run_id="train-alice-" + "b" * 32,
            status="completed",
            metrics={planted: 0.9},
            worker=planted,
            seconds=1.0,
        ),
        ChildState(index=1, model="logistic_regression", params={}, status="failed", error=planted),
    ]
    progress = BatchProgress(
        batch_id="batch-alice-" + "c" * 32,
        dataset_id="0123456789abcdef",
        target=planted,
        task="classification",
        primary_metric=planted,
        max_parallel=planted,  # type: ignore[arg-type]  # hostile text where a number goes
        sweep=False,
        children=children,
        phase=planted,
    )
    _draw(BatchView("batch-alice-" + "c" * 32, "running", None, 1.0, progress), User("alice"), {"0123456789abcdef": planted})


def _markdown_texts(at: AppTest) -> list[str]:
    """Every text Streamlit draws as markdown on the page."""
    texts = [e.value for kind in ("subheader", "caption", "markdown", "error", "info", "warning") for e in getattr(at, kind)]
    texts += [m.label for m in at.metric] + [m.value for m in at.metric]
    texts += [e.proto.text for e in at.get("progress")]
    texts += [e.proto.label for e in at.get("badge")] if at.get("badge") else []
    return texts


def _assert_inert(at: AppTest) -> None:
    assert not at.exception, at.exception
    hits = [t for t in _markdown_texts(at) if "Sign in again" in t or "session expired" in t]
    assert hits, "the planted text is shown (as text)"
    for text in hits:  # every appearance is the escaped form (md escapes character by character)
        rest = text.replace(md(PLANTED), "")
        assert "Sign in again" not in rest and "session expired" not in rest, text
        assert "](https://" not in text and ":red[" not in text


def test_run_view_shows_a_planted_model_as_text():
    at = AppTest.from_function(_run_page, args=(PLANTED,), default_timeout=30)
    at.run()
    _assert_inert(at)
    assert at.subheader[0].value == md(PLANTED)


def test_run_view_shows_a_catalog_label_for_a_known_model():
    def page() -> None:
        from orchestration.views import RunView
        from ui.run_view import _draw_status

        _draw_status(
            RunView("train-alice-" + "a" * 32, "completed", "random_forest_classifier", "d", "y", None, 1.0, "done", 100.0), {}
        )

    at = AppTest.from_function(page, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Random forest (classification)"
    assert at.metric[0].value == "Finished"


def test_batch_view_shows_planted_values_as_text():
    at = AppTest.from_function(_batch_page, args=(PLANTED,), default_timeout=30)
    at.run()
    _assert_inert(at)
    assert at.dataframe[0].value["configuration"].tolist() == [PLANTED]  # a dataframe cell: plain text


@pytest.mark.parametrize("key", list(MODELS))
def test_catalog_labels_are_plain_markdown(key):
    assert model_label(key) == model_name(key) == MODELS[key].label
    assert not UNESCAPED.search(MODELS[key].label) and "](" not in MODELS[key].label


def test_unknown_model_keys():
    assert model_label(PLANTED) == md(PLANTED)
    assert model_name(PLANTED) == PLANTED  # for dataframes, CSV and (escaping) charts
    assert child_label(PLANTED, {}, None) == PLANTED
    assert model_label(None) == "None"
