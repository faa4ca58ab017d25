"""The floor under a tiny run: a workflow of 6 activities that do nothing (as many as a run's stages), run by a
worker in the benchmark process with thread-pool activities, as TrainEasy's are."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

STAGES = 6


@activity.defn(name="bench_noop")
def noop(stage: int) -> int:
    return stage


@workflow.defn(name="BenchEmptyWorkflow")
class EmptyWorkflow:
    @workflow.run
    async def run(self, stages: int) -> int:
        for stage in range(stages):
            await workflow.execute_activity(noop, stage, start_to_close_timeout=timedelta(seconds=60))
        return stages
