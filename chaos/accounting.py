"""The accounting of a chaos scenario, pure: each accepted launch's outcome told as completed, failed (with a
plain message) or lost, the scenario's tally, and the table `make chaos` prints.

Lost: an accepted launch that did not end, within the deadline, either completed with its model registered
exactly once, or failed or cancelled with a plain message; and any run another user could see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ENDED_PLAINLY = ("failed", "cancelled")
# what a plain message never holds: a traceback, an exception's class name, an errno, a server path
_NOT_PLAIN = (
    re.compile(r"Traceback \(most recent call last\)"),
    re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Failure)\b"),
    re.compile(r"\[Errno \d+\]|\berrno\b", re.I),
    re.compile(r"(^|[\s'\"(=:])/(home|root|tmp|var|usr|etc|work|srv|opt|mnt)\b"),
)


@dataclass(frozen=True)
class Outcome:
    """How one accepted launch ended, as read back through the service (and the registry)."""

    run_id: str
    owner: str
    status: str  # completed | failed | cancelled | terminated | timed_out | running (at the deadline) | unreadable
    models: int = 0  # versions the registry holds for this run
    message: str | None = None  # what the user reads: the run's error, or why it could not be read
    seen_by: tuple[str, ...] = ()  # other users whose run list showed it, or who could open it


def plain(message: str | None, home: str = "") -> bool:
    """A message a user can read and act on: some words, none of the machinery, no server path."""
    if not message or not message.strip():
        return False
    if home and home in message:
        return False
    return not any(p.search(message) for p in _NOT_PLAIN)


def verdict(outcome: Outcome, home: str = "") -> tuple[str, str | None]:
    """("completed" | "failed" | "lost", why it is lost or None)."""
    if outcome.seen_by:
        return "lost", f"{outcome.run_id} is visible to {', '.join(outcome.seen_by)}"
    if outcome.status == "completed":
        if outcome.models == 1:
            return "completed", None
        return "lost", f"{outcome.run_id} completed with {outcome.models} model versions registered (expected 1)"
    if outcome.status in ENDED_PLAINLY:
        if plain(outcome.message, home):
            return "failed", None
        return "lost", f"{outcome.run_id} {outcome.status} without a plain message: {outcome.message!r}"
    if outcome.status == "running":
        return "lost", f"{outcome.run_id} still running at the deadline"
    return "lost", f"{outcome.run_id} ended {outcome.status}: {outcome.message!r}"


@dataclass
class Tally:
    scenario: str
    launched: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    serving: bool | None = None  # None: not checked (the scenario was skipped)
    problems: list[str] = field(default_factory=list)  # lost runs and the scenario's own failed expectations
    notes: list[str] = field(default_factory=list)  # what was seen on the way, not a failure
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.skipped is None and self.lost == 0 and self.serving is True and not self.problems


def tally(scenario: str, outcomes: list[Outcome], home: str = "") -> Tally:
    t = Tally(scenario, launched=len(outcomes))
    for outcome in outcomes:
        kind, why = verdict(outcome, home)
        if kind == "completed":
            t.completed += 1
        elif kind == "failed":
            t.failed += 1
        else:
            t.lost += 1
            t.problems.append(f"lost: {why}")
    return t


HEADER = ("scenario", "launched", "completed", "failed", "lost", "serving after", "result")


def result_word(t: Tally) -> str:
    if t.skipped is not None:
        return f"skipped: {t.skipped}"
    return "pass" if t.passed else "FAIL"


def render(tallies: list[Tally], total_s: float) -> str:
    """The table, then each scenario's problems and notes, then the total time."""
    rows = [HEADER] + [
        (
            t.scenario,
            str(t.launched),
            str(t.completed),
            str(t.failed),
            str(t.lost),
            "-" if t.serving is None else ("yes" if t.serving else "NO"),
            result_word(t),
        )
        for t in tallies
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for t in tallies:
        for line in [*(f"  ! {p}" for p in t.problems), *(f"  · {n}" for n in t.notes)]:
            lines.append(f"[{t.scenario}]{line}")
    passed = sum(t.passed for t in tallies)
    lines.append(f"{passed} of {len(tallies)} scenarios passed; total time {total_s:.0f} s")
    return "\n".join(lines)
