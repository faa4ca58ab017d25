"""Short data tasks on the I/O queue as activities: ingest an upload, the data check, predict, tag a model."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.config import Settings, load_settings
from core.storage import Storage, write_atomic
from orchestration.activity_errors import refuse
from orchestration.contracts import (
    CheckReport,
    CheckRequest,
    IngestRequest,
    IngestResult,
    PredictRequest,
    PredictResult,
    TagRequest,
)

if TYPE_CHECKING:
    import pandas as pd

ESTIMATE_ROWS = 1000  # rows rendered to estimate the size of a predictions file before building it
PREVIEW_ROWS = 20  # first rows of the predictions kept with their true values, for the page to show


def preview_file(predictions: Path) -> Path:
    """Beside a predictions file: its first rows as they are (the CSV itself is formula-safe: '=1+1)."""
    return predictions.with_suffix(".preview.json")


class DataActivities:
    """Short data tasks on the I/O queue: ingest an upload, the data check before training, predict."""

    def __init__(self, storage: Storage, settings: Settings | None = None) -> None:
        self.storage = storage
        self.settings = settings or load_settings()

    def _staged(self, owner: str, name: str) -> Path:
        from core.names import display_name

        staged = self.storage.upload_dir(owner) / display_name(name)
        if not staged.is_file():
            raise refuse("The upload was not found; please upload the file again.")
        return staged

    @activity.defn
    def ingest_dataset(self, req: IngestRequest) -> IngestResult:
        from core.datasets import DatasetError, ingest_csv

        staged = self._staged(req.owner, req.upload_file)
        try:
            info = ingest_csv(
                self.storage,
                req.owner,
                staged,  # parsed from disk, never held in memory whole
                req.filename,
                req.max_bytes,
                max_columns=req.max_columns or self.settings.max_columns,
                max_cells=req.max_cells or self.settings.max_cells,
            )
        except DatasetError as exc:
            staged.unlink(missing_ok=True)
            raise refuse(str(exc)) from None
        # other errors keep the staged file for Temporal's retry; the service removes it in the end
        staged.unlink(missing_ok=True)
        return IngestResult(info.dataset_id, info.name, info.rows, len(info.columns))

    @activity.defn(name="check_dataset")
    def check_dataset(self, req: CheckRequest) -> CheckReport:
        """The data check (ml.guardrails.assess_data) of a stored dataset and target for one model."""
        import pandas as pd

        from core.datasets import dataset_path
        from ml.catalog import get_model
        from ml.guardrails import assess_data
        from ml.model_spec import ParamError

        path = dataset_path(self.storage, req.owner, req.dataset_id)
        if not path.is_file():
            raise refuse("The dataset no longer exists; upload it again.")
        try:
            spec = get_model(req.model)
            return assess_data(
                pd.read_parquet(path),
                req.target,
                spec,
                req.params,
                req.cv_folds,
                max_fit_minutes=self.settings.max_fit_minutes,
                test_size=req.test_size,
                include=req.include_columns,
            )
        except (ParamError, ValueError) as exc:
            raise refuse(f"The data cannot be checked: {exc}") from None

    @activity.defn
    def tag_model(self, req: TagRequest) -> bool:
        from core.registry import Registry

        return Registry(self.storage).add_tag(req.owner, req.run_id, req.tag) is not None

    @activity.defn
    def predict(self, req: PredictRequest) -> PredictResult:
        """Predictions for an uploaded CSV, written to the owner's predictions folder. The input is parsed
        with the upload caps (columns, cells), and the file is refused before it is written when it would
        pass the cell limit (rows x output columns) or the storage the owner has left (`max_output_bytes`):
        a classifier adds one probability column per class, so the output can dwarf the input."""
        from core.csv_parse import DatasetError, decode_csv_text, parse_csv
        from core.registry import Registry
        from ml.persist import load_model
        from ml.schema import SchemaError, conform

        registry = Registry(self.storage)
        record = registry.get(req.owner, req.model_id)
        staged = self._staged(req.owner, req.upload_file)
        if record is None:
            raise refuse("That model no longer exists.")
        max_cells = req.max_cells or self.settings.max_cells
        max_output = req.max_output_bytes or self.settings.max_stored_mb * 2**20
        try:
            df = parse_csv(
                decode_csv_text(staged.read_bytes(), req.max_bytes),
                min_columns=1,
                max_columns=req.max_columns or self.settings.max_columns,
                max_cells=max_cells,
            )
        except DatasetError as exc:
            staged.unlink(missing_ok=True)
            raise refuse(str(exc)) from None
        try:
            X, notes = conform(df, record.input_schema)
        except SchemaError as exc:
            raise refuse(str(exc)) from None
        try:
            pipeline = load_model(registry.model_file(record))
        except FileNotFoundError:  # deleted under it: say so, without the server's path
            staged.unlink(missing_ok=True)
            raise refuse("This model's file is gone (it was just deleted); pick another model.") from None
        classes = list(getattr(pipeline[-1], "classes_", [])) if hasattr(pipeline[-1], "predict_proba") else []
        columns = df.shape[1] + 1 + len(classes)
        if len(df) * columns > max_cells:  # checked before predicting: the probabilities alone are rows x classes
            staged.unlink(missing_ok=True)
            raise refuse(
                f"The predictions would have {len(df):,} rows x {columns:,} columns (the file's "
                f"{df.shape[1]:,}, the prediction and {len(classes):,} class probabilities) = "
                f"{len(df) * columns:,} cells; the limit is {max_cells:,} cells. "
                "Predict on fewer rows or columns."
            )
        out = df.copy()
        out["prediction"] = pipeline.predict(X)
        if classes:
            for label, column in zip(pipeline[-1].classes_, pipeline.predict_proba(X).T):
                out[f"probability_{label}"] = column.round(6)
        name = f"{secrets.token_hex(8)}.csv"
        data = _bounded_csv(out, max_output, staged)
        where = self.storage.user_dir(req.owner) / "predictions" / name
        write_atomic(where, data)
        preview = out.head(PREVIEW_ROWS).to_json(orient="records", date_format="iso", default_handler=str)
        write_atomic(preview_file(where), preview.encode())
        staged.unlink(missing_ok=True)
        # no preview rows here: results travel in the workflow history; the service reads them from the files
        return PredictResult(len(out), notes, name, record.label)


def _too_big(size: int, limit: int, about: bool) -> ApplicationError:
    return refuse(
        f"The predictions file would be {'about ' if about else ''}{_size(size)}, but only "
        f"{_size(limit)} of your storage quota is left. Predict on fewer rows, or delete "
        "datasets, models or predictions to make room."
    )


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB"


def _bounded_csv(out: pd.DataFrame, limit: int, staged: Path) -> bytes:
    """The formula-safe CSV of `out`, or a refusal when it would exceed `limit` bytes: estimated from the
    first rows before the whole text is built, then checked exactly before anything is written."""
    from core.csvsafe import frame_to_csv

    n = len(out)
    if n > ESTIMATE_ROWS:
        sample = len(frame_to_csv(out.iloc[:ESTIMATE_ROWS]))
        estimate = int(sample * n / ESTIMATE_ROWS)
        if estimate > limit:
            staged.unlink(missing_ok=True)
            raise _too_big(estimate, limit, about=True)
    data = frame_to_csv(out)
    if len(data) > limit:
        staged.unlink(missing_ok=True)
        raise _too_big(len(data), limit, about=False)
    return data
