"""What crosses Temporal: task queues, search attributes and small dataclasses. No pandas, no scikit-learn.

Only ids, paths and small results travel here; datasets and models stay in the storage root.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

# The data check's report is defined once, beside the code that fills it in (ml/ may not import this
# module; that one is stdlib only too), and travels through Temporal as it is: re-exported here.
from ml.check_report import CheckFinding as CheckFinding
from ml.check_report import CheckReport as CheckReport

OWNER = SearchAttributeKey.for_keyword("Owner")
RUN_KIND = SearchAttributeKey.for_keyword("RunKind")
MODEL = SearchAttributeKey.for_keyword("Model")
DATASET = SearchAttributeKey.for_keyword("DatasetId")
SEARCH_ATTRIBUTES = (OWNER, RUN_KIND, MODEL, DATASET)


def run_attributes(owner: str, kind: str, dataset_id: str | None = None, model: str | None = None) -> TypedSearchAttributes:
    """Search attributes of a workflow we start (the service's and a batch's children alike): the owner
    always, so ownership can be checked, and the kind, dataset and model the run list filters on."""
    pairs = [SearchAttributePair(OWNER, owner), SearchAttributePair(RUN_KIND, kind)]
    if dataset_id:
        pairs.append(SearchAttributePair(DATASET, dataset_id))
    if model:
        pairs.append(SearchAttributePair(MODEL, model))
    return TypedSearchAttributes(pairs)


STAGES = ("load", "preprocess", "cv", "fit", "evaluate", "save")
STAGE_LABELS = {
    "load": "Load and validate data",
    "preprocess": "Preprocess and split",
    "cv": "Cross-validate",
    "fit": "Fit model",
    "evaluate": "Evaluate",
    "save": "Save model",
}
# Share of a run's work per stage, for the progress percentage.
STAGE_WEIGHTS = {"load": 5, "preprocess": 5, "cv": 30, "fit": 45, "evaluate": 10, "save": 5}


PRIMARY_METRIC = {"classification": "balanced_accuracy", "regression": "r2"}  # higher is better for both


def io_queue(task_queue: str) -> str:
    """Light I/O work (dataset ingestion) gets its own queue so it never waits behind a long fit."""
    return f"{task_queue}-io"


@dataclass
class TrainRequest:
    owner: str
    dataset_id: str
    target: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    test_size: float = 0.2
    cv_folds: int = 0  # 0: no cross-validation; else k-fold on the training rows
    include_columns: list[str] = field(default_factory=list)  # identifier-like columns kept as features anyway


@dataclass
class BatchItem:
    model: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchRequest:
    owner: str
    dataset_id: str
    target: str
    items: list[BatchItem] = field(default_factory=list)
    seed: int = 42
    test_size: float = 0.2
    cv_folds: int = 0
    max_parallel: int = 2
    sweep: bool = False  # the items come from a parameter sweep of one model
    task: str = "classification"


@dataclass
class BatchInput:
    batch_id: str
    request: BatchRequest


@dataclass
class ChildState:
    """One configuration of a batch, as the batch's `progress` query reports it."""

    index: int
    model: str
    params: dict[str, Any]
    run_id: str | None = None
    status: str = "pending"  # pending | running | completed | failed | cancelled
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    worker: str | None = None
    seconds: float | None = None
    curve: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0  # how many times this configuration was started (retry-failed adds one)


@dataclass
class BatchProgress:
    batch_id: str
    dataset_id: str
    target: str
    task: str
    primary_metric: str
    max_parallel: int
    sweep: bool
    children: list[ChildState] = field(default_factory=list)
    phase: str = "running"  # running | awaiting (failures: retry or finish) | stopping | done
    best_run_id: str | None = None
    best_tagged: bool = False  # the best child's model carries the batch's "best of" tag (kept by retention)


@dataclass
class TagRequest:
    owner: str
    run_id: str
    tag: str


@dataclass
class TrainInput:
    run_id: str
    request: TrainRequest


@dataclass
class IngestRequest:
    owner: str
    upload_file: str  # name of the staged upload in the owner's upload folder
    filename: str  # as the user named it (display only)
    max_bytes: int
    max_cells: int = 50_000_000  # rows x columns allowed for this user (quotas.limits_for(owner).max_cells)
    max_columns: int = 0  # 0 (and histories from before this field): the worker's TRAINEASY_MAX_COLUMNS


@dataclass
class CheckRequest:
    owner: str
    dataset_id: str
    target: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    cv_folds: int = 0
    test_size: float = 0.2
    include_columns: list[str] = field(default_factory=list)


@dataclass
class IngestResult:
    """A stored dataset, as the Datasets page reports it after an upload."""

    dataset_id: str
    name: str
    rows: int
    columns: int


@dataclass
class PredictRequest:
    owner: str
    model_id: int
    upload_file: str
    filename: str
    max_bytes: int
    # Caps with defaults, so requests from before them decode; 0 means "the worker's own setting".
    max_cells: int = 0  # rows x columns of the input, and of the predictions file (the user's max_cells)
    max_columns: int = 0  # columns of the input's header (TRAINEASY_MAX_COLUMNS)
    max_output_bytes: int = 0  # size of the predictions file: the user's storage quota left (0: TRAINEASY_MAX_STORED_MB)


@dataclass
class PredictResult:
    """A written predictions file: its name in the owner's predictions folder, row count and notes."""

    rows: int
    notes: list[str]
    file: str
    model: str  # the model's label
    # the first rows of the file; the service fills them in from the file, they never travel through Temporal
    preview: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunFacts:
    """The small facts a run's stages learn, each set by one stage and None until then.

    A stage returns the ones it knows; the workflow merges them into its progress (`merge`). Histories
    recorded before this type replay unchanged: a dict decodes into it, unknown keys are ignored.
    """

    # load: what the data turned out to be
    task: str | None = None
    rows: int | None = None
    used_rows: int | None = None
    dropped_missing_target: int | None = None
    features: int | None = None
    classes: int | None = None  # 0 for regression
    notes: list[str] | None = None
    # preprocess
    train_rows: int | None = None
    test_rows: int | None = None
    # cv: metric -> {"mean", "std"}
    cv: dict[str, dict[str, float]] | None = None
    cv_resumed_from: int | None = None
    # fit
    fit_seconds: float | None = None
    cpu_seconds: float | None = None
    peak_rss_mb: float | None = None
    resumed_from_step: int | None = None
    curve: dict[str, Any] | None = None  # {"metric", "steps", "train", "valid"}
    worker: str | None = None
    fit_notes: list[str] | None = None  # what the fit said a user should know (it stopped before converging)
    # evaluate: test-set metrics (the workflow keeps them in RunProgress.metrics, not here)
    metrics: dict[str, float] | None = None
    # save
    model_id: int | None = None
    model_name: str | None = None
    model_version: int | None = None

    def merge(self, other: RunFacts) -> None:
        """Take every fact `other` knows (its non-None fields)."""
        for f in fields(self):
            value = getattr(other, f.name)
            if value is not None:
                setattr(self, f.name, value)


@dataclass
class StageHeartbeat:
    """What a long stage (cv, fit, evaluate) says as it goes, in its heartbeats; each field None when it does
    not say. Heartbeats sent as plain dicts (before this type) decode into it: unknown keys are ignored."""

    step: int | None = None  # steps (folds, trees, epochs...) done
    of: int | None = None  # out of this many
    fold: int | None = None  # cross-validation: the folds done (then the step counts folds too)
    resumed_from: int | None = None  # steps an earlier attempt had saved, which this one starts after
    part: str | None = None  # what the stage is doing ("feature importance")
    curve: dict[str, Any] | None = None  # the learning curve so far: {"metric", "steps", "train", "valid"}
    loss: list[float] | None = None  # an MLP's training loss per epoch so far, read in its fit's child process
    elapsed: float | None = None  # seconds the fit has been running
    unit: str | None = None  # what the fit's step counts: "tree", "iteration" or "epoch" (None: "step")


@dataclass
class StageResult:
    """What one training stage hands back: its facts, which attempt produced them and the task queue only the
    worker that ran it polls (filled in by that worker, workers/training_slot.py; None from a worker without
    one), where the run's next stage goes to find its data still in memory."""

    attempt: int
    facts: RunFacts = field(default_factory=RunFacts)
    worker_queue: str | None = None


# The error type of a stage refused by the worker whose own queue it was sent to, because that worker's training
# slot is taken (workers/training_slot.py): the workflow sends the stage to the shared queue instead.
WORKER_BUSY = "WorkerBusy"


@dataclass
class StageProgress:
    name: str
    status: str = "pending"  # pending | running | done | skipped | failed | cancelled
    started_at: str | None = None
    seconds: float | None = None
    attempt: int = 0


@dataclass
class RunProgress:
    """The workflow's own record of a run: answered by the `progress` query and returned at the end."""

    run_id: str
    model: str
    dataset_id: str
    target: str
    stage: str = "load"
    stages: list[StageProgress] = field(default_factory=list)
    facts: RunFacts = field(default_factory=RunFacts)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
