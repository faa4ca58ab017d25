"""What the Admin page shows of the engine: whether it answers, how many workers poll, and where it is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Health:
    """Whether the engine answers, and how many worker processes poll the training queue."""

    temporal: bool
    workers: int
    error: str | None = None  # why Temporal did not answer, when it did not


@dataclass
class EngineInfo:
    """Where this app's engine is, for the Admin page."""

    temporal_target: str
    namespace: str
    task_queue: str
    home: str
