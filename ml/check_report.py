"""The data check's report: what it found in a dataset and target, and what a fit will cost.

Stdlib only: the report travels through Temporal as it is (orchestration.contracts re-exports these
types), so the web process can read it without importing pandas or scikit-learn. ml/guardrails.py
fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckFinding:
    level: str  # error (refused) | warning | info
    message: str


@dataclass
class CheckReport:
    """The data check of a dataset and target for one model (ml.guardrails.assess_data)."""

    rows: int
    usable_rows: int
    features: int
    findings: list[CheckFinding] = field(default_factory=list)
    estimate_seconds: float | None = None
    estimate_memory_mb: float | None = None
    id_columns: list[str] = field(default_factory=list)  # numeric columns that look like identifiers

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)
