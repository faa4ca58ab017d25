"""Temporal's sandbox imports a workflow's module afresh for every run: a training run must not import the other
workflows with it (orchestration/workflows/__init__.py imports them on first use)."""

from __future__ import annotations

import subprocess
import sys

from core.config import PROJECT_ROOT


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in sys.modules if m.startswith('orchestration.workflows')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_a_training_run_imports_only_its_own_workflow_modules():
    assert _modules_after("from orchestration.workflows.training import TrainingWorkflow") == {
        "orchestration.workflows",
        "orchestration.workflows.policy",
        "orchestration.workflows.training",
    }


def test_the_package_still_names_every_workflow():
    import orchestration.workflows as workflows
    from orchestration.workflows.batch import BatchTrainingWorkflow
    from orchestration.workflows.data import CheckDataWorkflow, IngestWorkflow, PredictWorkflow
    from orchestration.workflows.training import TrainingWorkflow

    expected = [BatchTrainingWorkflow, CheckDataWorkflow, IngestWorkflow, PredictWorkflow, TrainingWorkflow]
    assert [getattr(workflows, name) for name in workflows.__all__] == expected
