"""A finished run's held-out evaluation as its page draws it: metrics, confusion matrix, curves, feature importance."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ClassCurve:
    """One class's precision-recall curve (one-vs-rest), downsampled."""

    label: str
    x: list[float]
    y: list[float]


@dataclass
class RocCurve(ClassCurve):
    """One class's ROC curve (one-vs-rest), downsampled, and the area under it."""

    auc: float


@dataclass
class FeatureImportance:
    """Permutation importance of one input column on the held-out rows."""

    feature: str
    importance: float
    std: float


@dataclass
class Evaluation:
    """A finished run's held-out evaluation, as its page draws it: the run's evaluation.json (written by the
    evaluate stage from ml.evaluation; its format is unchanged, this is how it is read)."""

    metrics: dict[str, float] = field(default_factory=dict)
    # classification: the class labels, the confusion matrix (actual x predicted) and the curves
    labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    roc: list[RocCurve] = field(default_factory=list)
    pr: list[ClassCurve] = field(default_factory=list)
    # regression: a sample of the test rows
    actual: list[float] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)
    importance: list[FeatureImportance] = field(default_factory=list)  # most important first
