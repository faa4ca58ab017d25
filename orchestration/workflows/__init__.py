"""Workflows: deterministic glue only. No I/O, no pandas/sklearn; activity handles come through pass-through.

The workflow classes are imported from their modules on first use, not here: Temporal's sandbox imports a
workflow's module afresh for every run, package first, and importing every workflow with it (batch, data)
tripled the cost of starting each training run in a worker (11 ms → 4 ms).
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
