"""The API's request bodies and the few response shapes that are not the service's own dataclasses (those,
RunView, BatchView, RunSummary, DatasetInfo, PredictResult, WorkflowMetrics, are the response models as they
are). Bounds come from orchestration/validation.py, so the spec states the limits the service enforces."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.model_record import ModelRecord
from core.names import DATASET_ID_RE
from ml.catalog import MODELS
from ml.model_spec import ModelSpec, Param
from orchestration.contracts import BatchItem, BatchRequest, TrainRequest
from orchestration.health import HealthReport
from orchestration.validation import MAX_BATCH_ITEMS, MAX_FOLDS, MAX_PARALLEL, SEED_MAX, TEST_SIZE_MAX, TEST_SIZE_MIN
from orchestration.views import BatchView, RunSummary, RunView

MAX_COLUMN_NAME = 1000  # the longest column name a request may hold

DATASET_ID = Field(
    pattern=DATASET_ID_RE.pattern, description="A dataset id from `GET /api/v1/datasets`", examples=["0123456789abcdef"]
)
MODEL_KEY = Field(description="A model of the catalog (`GET /api/v1/models/catalog`)", json_schema_extra={"enum": list(MODELS)})
TARGET = Field(min_length=1, max_length=200, description="The column to predict", examples=["bought"])
SEED = Field(42, ge=0, le=SEED_MAX, description="Same data, parameters and seed give the same model")
TEST_SIZE = Field(0.2, ge=TEST_SIZE_MIN, le=TEST_SIZE_MAX, description="Share of the rows held out to measure the model")
CV_FOLDS = Field(0, ge=0, le=MAX_FOLDS, description="k-fold cross-validation on the training rows: 0 (off) or 2 to 10")
PARAMS: Any = Field(
    default_factory=dict, description="The model's parameters by name (the catalog's schema); unset ones keep their default"
)


class TrainBody(BaseModel):
    """The same typed request as the Train page."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "0123456789abcdef",
                    "target": "bought",
                    "model": "random_forest_classifier",
                    "params": {"n_estimators": 100},
                }
            ]
        },
    )
    dataset_id: str = DATASET_ID
    target: str = TARGET
    model: str = MODEL_KEY
    params: dict[str, Any] = PARAMS
    seed: int = SEED
    test_size: float = TEST_SIZE
    cv_folds: int = CV_FOLDS
    include_columns: list[Annotated[str, Field(max_length=MAX_COLUMN_NAME)]] = Field(
        default_factory=list, max_length=1000, description="Identifier-like columns to keep as features (the dataset's own)"
    )

    def request(self, owner: str) -> TrainRequest:
        return TrainRequest(
            owner,
            self.dataset_id,
            self.target,
            self.model,
            dict(self.params),
            self.seed,
            self.test_size,
            self.cv_folds,
            list(self.include_columns),
        )


class BatchItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = MODEL_KEY
    params: dict[str, Any] = PARAMS


class BatchBody(BaseModel):
    """A batch (several models) or a sweep (one model, several parameter sets), as the Batch page starts one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "0123456789abcdef",
                    "target": "bought",
                    "items": [
                        {"model": "logistic_regression"},
                        {"model": "random_forest_classifier", "params": {"n_estimators": 50}},
                    ],
                    "max_parallel": 2,
                }
            ]
        },
    )
    dataset_id: str = DATASET_ID
    target: str = TARGET
    items: list[BatchItemBody] = Field(min_length=1, max_length=MAX_BATCH_ITEMS, description="One configuration per child run")
    seed: int = SEED
    test_size: float = TEST_SIZE
    cv_folds: int = CV_FOLDS
    max_parallel: int = Field(2, ge=1, le=MAX_PARALLEL, description="Child runs at once (lowered to your free slots)")
    sweep: bool = Field(False, description="The items are a parameter sweep of one model")

    def request(self, owner: str) -> BatchRequest:
        items = [BatchItem(i.model, dict(i.params)) for i in self.items]
        return BatchRequest(
            owner, self.dataset_id, self.target, items, self.seed, self.test_size, self.cv_folds, self.max_parallel, self.sweep
        )


class RetryBody(BaseModel):
    """For a run: `params` replaces some of its parameters. For a batch: `edits` gives new parameters to some of
    its failed configurations, by index. Both optional: without them it runs again as it was."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"params": {"max_iter": 500}}, {"edits": {"1": {"n_estimators": 50}}}]}
    )
    params: dict[str, Any] | None = None
    edits: dict[str, dict[str, Any]] | None = None


class Started(BaseModel):
    """A run or batch started: where to watch it."""

    id: str = Field(examples=["train-alice-0123456789abcdef0123456789abcdef"])
    kind: Literal["train", "batch"]
    status_url: str
    stream_url: str
    max_parallel: int | None = Field(None, description="A batch's granted parallelism (lowered to your free slots)")
    retry_of: str | None = Field(None, description="For a retried run: the run it repeats")


class Status(BaseModel):
    """A run's view (the run page's) or a batch's (the batch page's): `kind` says which field is set."""

    kind: Literal["train", "batch"]
    status: str = Field(description="running, completed, failed, cancelled, terminated or timed_out")
    run: RunView | None = None
    batch: BatchView | None = None


class WorkflowPageOut(BaseModel):
    items: list[RunSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` (with the same filters) for the next page; null on the last")


class CheckOut(BaseModel):
    name: str
    state: Literal["ok", "degraded", "down"]
    reason: str | None = Field(None, description="Why, in plain words: for an administrator's token only")


class HealthOut(BaseModel):
    """The engine's health. Without an administrator's token: each check's name and state only (its reason can
    tell free disk, busy training slots or a failing process); nothing secret either way (no hosts, pids, paths)."""

    state: Literal["ok", "degraded", "down"]
    checks: list[CheckOut]
    temporal_latency_ms: float | None
    checked_at: str

    @classmethod
    def of(cls, report: HealthReport, reasons: bool) -> HealthOut:
        checks = [
            CheckOut(name=c.name, state=c.state, reason=c.reason if reasons else None)  # type: ignore[arg-type]
            for c in report.checks
        ]
        return cls(
            state=report.state,  # type: ignore[arg-type]
            checks=checks,
            temporal_latency_ms=report.temporal.latency_ms,
            checked_at=report.checked_at,
        )


class ModelOut(BaseModel):
    """A registered model version (its card: `GET /api/v1/models/{id}/card`)."""

    id: int
    name: str
    version: int
    run_id: str
    created_at: str
    size_bytes: int
    tags: list[str]
    dataset_id: str
    target: str
    task: str
    metrics: dict[str, float]

    @classmethod
    def of(cls, r: ModelRecord) -> ModelOut:
        return cls(
            id=r.id,
            name=r.name,
            version=r.version,
            run_id=r.run_id,
            created_at=r.created_at,
            size_bytes=r.size_bytes,
            tags=list(r.tags),
            dataset_id=r.dataset_id,
            target=r.target,
            task=r.task,
            metrics=r.metrics,
        )


class CatalogModel(BaseModel):
    key: str
    label: str
    task: str
    params: list[Param] = Field(
        default_factory=list, description="What `params` of a run of this model may hold: types, defaults, bounds, choices"
    )

    @classmethod
    def of(cls, spec: ModelSpec) -> CatalogModel:
        params = list(spec.params)  # the catalog's own schema (ml/model_spec.py), as the Train page's form reads it
        return cls(key=spec.key, label=spec.label, task=spec.task, params=params)


class Me(BaseModel):
    user: str
    roles: list[str]
    token_id: str
