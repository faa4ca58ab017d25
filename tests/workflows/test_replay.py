"""Determinism guard: the workflow code must replay histories recorded from real runs.

A change that would break running workflows on upgrade fails here. After an intended, versioned
change, re-record with `.venv/bin/python -m tests.workflows.record_histories`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from orchestration.workflows import BatchTrainingWorkflow, TrainingWorkflow

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize(
    "name", ["training", "batch", "batch_cancelled", "training_cancelled_in_save", "batch_cancelled_best", "training_sticky"]
)
async def test_recorded_history_replays(name):
    text = (HISTORIES / f"{name}.json").read_text()
    history = WorkflowHistory.from_json(f"{name}-replay", text)
    replayer = Replayer(workflows=[TrainingWorkflow, BatchTrainingWorkflow])
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
