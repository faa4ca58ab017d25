"""Workflows: deterministic glue only. No I/O, no pandas/sklearn; the activity classes they name are imported
through `workflow.unsafe.imports_passed_through()` (one copy, not one per run).

The workflow classes are imported from their modules on first use, not here: Temporal's sandbox imports a
workflow's module afresh for every run, package first, and importing every workflow with it (batch, data)
made starting each training run in a worker take 11 ms instead of 4.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestration.workflows.batch import BatchTrainingWorkflow
    from orchestration.workflows.data import CheckDataWorkflow, IngestWorkflow, PredictWorkflow
    from orchestration.workflows.training import TrainingWorkflow

_MODULE = {
    "BatchTrainingWorkflow": "batch",
    "CheckDataWorkflow": "data",
    "IngestWorkflow": "data",
    "PredictWorkflow": "data",
    "TrainingWorkflow": "training",
}
__all__ = ["BatchTrainingWorkflow", "CheckDataWorkflow", "IngestWorkflow", "PredictWorkflow", "TrainingWorkflow"]


def __getattr__(name: str) -> Any:
    if name in _MODULE:
        return getattr(import_module(f"{__name__}.{_MODULE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
