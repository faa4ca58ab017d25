"""Where a run's stages ran, read from its Temporal history: for the sticky-stage tests."""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.workflows.training import STAGE_OF_ACTIVITY


@dataclass(frozen=True)
class Placement:
    """One stage activity as the history tells it: its queue, the worker that started it (None: never started)
    and how it ended."""

    stage: str
    queue: str
    identity: str | None
    outcome: str  # completed, failed, timed_out, canceled, open


async def placements(client, run_id: str) -> list[Placement]:
    """Every stage activity the run scheduled, in order."""
    scheduled: dict[int, tuple[str, str]] = {}
    started: dict[int, str] = {}
    ended: dict[int, str] = {}
    async for event in client.get_workflow_handle(run_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = (attrs.activity_type.name, attrs.task_queue.name)
        elif event.HasField("activity_task_started_event_attributes"):
            attrs = event.activity_task_started_event_attributes
            started[attrs.scheduled_event_id] = attrs.identity
        for field, outcome in (
            ("activity_task_completed_event_attributes", "completed"),
            ("activity_task_failed_event_attributes", "failed"),
            ("activity_task_timed_out_event_attributes", "timed_out"),
            ("activity_task_canceled_event_attributes", "canceled"),
        ):
            if event.HasField(field):
                ended[getattr(event, field).scheduled_event_id] = outcome
    return [
        Placement(STAGE_OF_ACTIVITY[name], queue, started.get(eid), ended.get(eid, "open"))
        for eid, (name, queue) in sorted(scheduled.items())
        if name in STAGE_OF_ACTIVITY
    ]
