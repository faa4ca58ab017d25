"""Quota value types: a user's limits (bounds, labels), the refusal when over one, ledger entries, usage figures."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from core.config import Settings


@dataclass(frozen=True)
class Limits:
    max_runs_in_flight: int
    launches_per_minute: int
    max_stored_mb: int
    max_cells: int
    tasks_per_minute: int
    overridden: frozenset[str] = field(default=frozenset(), compare=False)  # fields set by an admin

    @classmethod
    def defaults(cls, settings: Settings) -> Limits:
        return cls(**{name: getattr(settings, name) for name in LIMIT_FIELDS})

    @property
    def max_stored_bytes(self) -> int:
        return self.max_stored_mb * 2**20


LIMIT_FIELDS = tuple(f.name for f in fields(Limits) if f.name != "overridden")
LIMIT_LABELS = {
    "max_runs_in_flight": "runs in flight",
    "launches_per_minute": "launches per minute",
    "max_stored_mb": "stored data (MB)",
    "max_cells": "cells per dataset (rows × columns)",
    "tasks_per_minute": "data tasks per minute",
}
# what an admin may set: (lowest, highest)
BOUNDS = {
    "max_runs_in_flight": (1, 1000),
    "launches_per_minute": (1, 100_000),
    "max_stored_mb": (1, 100_000_000),
    "max_cells": (1_000, 10**13),
    "tasks_per_minute": (1, 100_000),
}


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: which limit, the figures, and when it frees up."""

    limit: str  # a LIMIT_FIELDS name
    used: int  # in the limit's unit (slots, launches, tasks, bytes)
    asked: int  # what this request needed on top
    allowed: int  # the limit, in the same unit
    retry_after_s: int | None = None  # rate limits: seconds until the next one is allowed

    @property
    def message(self) -> str:
        if self.limit == "max_runs_in_flight":
            return (
                f"Quota: you have {self.used} of {self.allowed} runs in flight (queued or running; a batch counts "
                f"each run it may train at once), so this launch cannot start. A slot frees up when one of "
                f"them finishes or you cancel it."
            )
        if self.limit == "launches_per_minute":
            return (
                f"Quota: you started {self.used} runs or batches in the last minute; the limit is {self.allowed} "
                f"per minute. The next launch is allowed in {self.retry_after_s} s."
            )
        if self.limit == "tasks_per_minute":
            return (
                f"Quota: you ran {self.used} data tasks (uploads, data checks, predictions) in the last minute; "
                f"the limit is {self.allowed} per minute. Try again in {self.retry_after_s} s."
            )
        if self.limit == "max_stored_mb":
            what = f"This needs {_mb(self.asked)} more, but you" if self.asked else "You"
            return (
                f"Quota: {what} already store {_mb(self.used)} of your {_mb(self.allowed)} (datasets, models, "
                f"predictions and run files). Space frees up when you delete datasets or models."
            )
        if self.limit == "max_cells":
            return (
                f"Quota: this dataset has {self.asked:,} cells (rows × columns); the limit is {self.allowed:,}. "
                f"Upload fewer rows or columns."
            )
        return f"Quota {self.limit}: {self.used} used, {self.asked} asked, {self.allowed} allowed."


class OverQuota(Exception):
    """A quota refused the request; `refusal` has the figures. The service turns it into a UserError."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True)
class LedgerEntry:
    run_id: str
    owner: str
    kind: str
    slots: int
    bytes: int
    started_at: float
    closed: bool


@dataclass(frozen=True)
class Usage:
    """What a user has used against their limits, for the pages and the admin view."""

    user: str
    limits: Limits
    runs_in_flight: int
    launches_last_minute: int
    next_launch_in_s: int | None  # set when the launches-per-minute limit is reached
    tasks_last_minute: int
    stored_bytes: int

    @property
    def free_slots(self) -> int:
        return max(0, self.limits.max_runs_in_flight - self.runs_in_flight)

    @property
    def caption(self) -> str:
        """E.g. "2 of 3 runs in flight · 4 of 10 launches in the last minute · 12 MB of 2048 MB stored"."""
        parts = [
            f"{self.runs_in_flight} of {self.limits.max_runs_in_flight} runs in flight",
            f"{self.launches_last_minute} of {self.limits.launches_per_minute} launches in the last minute",
        ]
        if self.next_launch_in_s is not None:
            parts[-1] += f" (next allowed in {self.next_launch_in_s} s)"
        parts.append(f"{_mb(self.stored_bytes)} of {_mb(self.limits.max_stored_bytes)} stored")
        return " · ".join(parts)


def _mb(n: int) -> str:
    mb = n / 2**20
    if 0 < mb < 0.1:
        return "under 0.1 MB"
    return f"{mb:.0f} MB" if mb >= 10 or mb == int(mb) else f"{mb:.1f} MB"
