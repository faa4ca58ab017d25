"""Workflows: deterministic glue only. No I/O, no pandas/sklearn; activity handles come through pass-through."""

from orchestration.workflows.batch import BatchTrainingWorkflow
from orchestration.workflows.data import CheckDataWorkflow, IngestWorkflow, PredictWorkflow
from orchestration.workflows.training import TrainingWorkflow

__all__ = ["BatchTrainingWorkflow", "CheckDataWorkflow", "IngestWorkflow", "PredictWorkflow", "TrainingWorkflow"]
