"""A cancel lands within seconds even during one long C-level fit (SVC): the fit runs in a child process
that the activity kills. Real dev server, real worker code (in this process, so its children are ours)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from temporalio.client import WorkflowExecutionStatus

import ml.child_fit as child_fit
from core.accounts import User
from orchestration.contracts import TrainRequest
from tests.helpers import eventually, finished_run, running_workers


def noise_csv(rows: int, seed: int = 0) -> bytes:
    """Labels unrelated to the features: every row becomes a support vector, so an SVC with a large C fits
    slowly (16 000 training rows: ~40 s on one core of the development machine, measured uncancelled)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=rows).round(4),
            "b": rng.normal(size=rows).round(4),
            "c": rng.normal(size=rows).round(4),
            "label": rng.choice(["p", "q"], rows),
        }
    )
    return df.to_csv(index=False).encode()


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def test_cancel_during_a_long_svc_fit_lands_within_5s_and_kills_the_fit_process(client, settings, service):
    user = User(f"svc_{uuid.uuid4().hex[:6]}")
    async with running_workers(client, settings):
        ds = await service.upload_dataset(user, "noise.csv", noise_csv(20_000))
        run_id = await service.start_training(
            user, TrainRequest(user.name, ds.dataset_id, "label", "svm_classifier", {"C": 1000.0})
        )

        async def fitting_in_a_child():
            view = await service.get_run(user, run_id)
            return view.stage == "fit" and child_fit.active_pids()

        pids = await eventually(fitting_in_a_child, timeout=120, interval=0.2)
        (pid,) = pids
        ticks = cpu_ticks(pid)
        await asyncio.sleep(2)  # well inside the single SVC fit call
        assert cpu_ticks(pid) > ticks, "the child process is not fitting"
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await service.cancel_run(user, run_id)
        view = await finished_run(service, user, run_id, timeout=60)
        took = loop.time() - asked
        desc = await client.get_workflow_handle(run_id).describe()
        assert not running(pid), "the fit process outlived the cancel"
    assert view.status == "cancelled", view.error
    assert desc.status == WorkflowExecutionStatus.CANCELED
    assert took < 5, f"cancel took {took:.1f}s"
    assert next(s for s in view.stages if s.name == "fit").status == "cancelled"
    assert not child_fit.active_pids()
    assert service.registry.by_run(user.name, run_id) is None
