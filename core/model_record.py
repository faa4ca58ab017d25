"""A registered model version: its record in the registry, and the typed view of its card the pages read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COST_FIELDS = ("fit_seconds", "cpu_seconds", "peak_rss_mb")  # what a fit cost, as the model card records it


@dataclass(frozen=True)
class ModelRecord:
    id: int
    owner: str
    name: str
    version: int
    run_id: str
    created_at: str
    size_bytes: int
    tags: tuple[str, ...]
    card: dict[str, Any]
    dataset_id: str = ""
    target: str = ""
    folder: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def lineage(self) -> tuple[str, str, str]:
        """What versions are counted per: (dataset id, target, model name)."""
        return (self.dataset_id, self.target, self.name)

    # --- the card, typed: what the pages read of it (its JSON, which users download, stays as it is) ----
    @property
    def dataset_name(self) -> str:
        return str((self.card.get("dataset") or {}).get("name") or self.dataset_id or "?")

    @property
    def model_label(self) -> str | None:
        """The catalog label of the model's type ("Random forest (classification)")."""
        label = self.card.get("model_label")
        return None if label is None else str(label)

    @property
    def task(self) -> str:
        """classification | regression"""
        return str(self.card.get("task") or "")

    @property
    def metrics(self) -> dict[str, float]:
        """The test-set scores, by metric name."""
        return {str(k): float(v) for k, v in (self.card.get("metrics") or {}).items()}

    @property
    def costs(self) -> dict[str, float]:
        """What the fit cost (COST_FIELDS), those the card has."""
        return {k: float(self.card[k]) for k in COST_FIELDS if self.card.get(k) is not None}

    @property
    def input_schema(self) -> list[dict[str, Any]]:
        """Each input column as ml.schema describes it (name, kind...), in order; new rows are conformed to it."""
        return list(self.card.get("input_schema") or [])

    @property
    def feature_columns(self) -> list[str]:
        """The columns the model predicts from, in order (the target is not one of them)."""
        return [str(column["name"]) for column in self.input_schema]

    @property
    def skops_trusted(self) -> list[str] | None:
        """The types to trust when loading the file with skops alone; None for a model saved before files were
        self-contained (it needs TrainEasy's own code to load)."""
        trusted = self.card.get("skops_trusted")
        return None if trusted is None else [str(t) for t in trusted]

    @property
    def library_versions(self) -> dict[str, str]:
        """The versions of Python and the libraries the model was saved with, by name ("scikit-learn")."""
        return {str(k): str(v) for k, v in (self.card.get("versions") or {}).items() if v}
