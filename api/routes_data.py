"""`/api/v1`: datasets (upload, list, one), the model catalog, registered models (list, card, download),
predictions on a CSV and their files. Uploads go through the same ingestion, limits and quotas as the pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Request, UploadFile
from fastapi.responses import Response

from api.auth import backend
from api.backend import DATA_TASK_TIMEOUT
from api.errors import COMMON
from api.routes_runs import Caller
from api.schemas import CatalogModel, Me, ModelOut
from core.datasets import DatasetInfo
from ml.catalog import MODELS
from orchestration.contracts import IngestResult, PredictResult

router = APIRouter(prefix="/api/v1", responses=COMMON)
ModelId = Annotated[int, Path(ge=1, le=2**62, description="A model id from `GET /api/v1/models`")]
DatasetId = Annotated[str, Path(max_length=64, description="A dataset id from `GET /api/v1/datasets`")]
CsvFile = Annotated[UploadFile, File(description="A CSV file: comma, semicolon or tab separated, UTF-8")]
DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
}
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}


async def _read(request: Request, upload: UploadFile) -> bytes:
    """The upload's bytes, at most one byte past the limit: the service refuses a file over it with the figures."""
    return await upload.read(backend(request).settings.max_upload_bytes + 1)


@router.get("/me", response_model=Me, tags=["account"], summary="Who this token belongs to")
async def me(request: Request, user: Caller) -> Me:
    return Me(user=user.name, roles=list(user.roles), token_id=request.state.token_id)


@router.get("/datasets", response_model=list[DatasetInfo], tags=["datasets"], summary="Your datasets, newest first")
async def datasets(request: Request, user: Caller) -> list[DatasetInfo]:
    b = backend(request)
    return await b.sync(b.svc.list_datasets, user)


@router.get("/datasets/{dataset_id}", response_model=DatasetInfo, tags=["datasets"], summary="One dataset's profile")
async def dataset(dataset_id: DatasetId, request: Request, user: Caller) -> DatasetInfo:
    b = backend(request)
    return await b.sync(b.svc.get_dataset, user, dataset_id)


@router.post("/datasets", status_code=201, response_model=IngestResult, tags=["datasets"], summary="Upload a CSV")
async def upload(file: CsvFile, request: Request, user: Caller) -> IngestResult:
    """A worker validates, stores (as Parquet) and profiles it; a file it refuses gets a 422 saying what to fix."""
    b = backend(request)
    data = await _read(request, file)
    return await b.call(b.svc.upload_dataset(user, file.filename or "upload.csv", data), DATA_TASK_TIMEOUT)


@router.get("/models/catalog", response_model=list[CatalogModel], tags=["models"], summary="The models a run can train")
async def catalog(user: Caller) -> list[CatalogModel]:
    return [CatalogModel.of(m) for m in MODELS.values()]


@router.get("/models", response_model=list[ModelOut], tags=["models"], summary="Your registered models")
async def models(request: Request, user: Caller) -> list[ModelOut]:
    b = backend(request)
    return [ModelOut.of(r) for r in await b.sync(b.svc.list_models, user)]


@router.get("/models/{model_id}/card", response_model=dict[str, Any], tags=["models"], summary="A model's card")
async def model_card(model_id: ModelId, request: Request, user: Caller) -> dict[str, Any]:
    """Dataset hash, input schema, parameters, metrics, library versions and costs, as the Models page offers it."""
    b = backend(request)
    return await b.sync(b.svc.model_card, user, model_id)


@router.get(
    "/models/{model_id}/download", response_class=Response, responses=DOWNLOAD, tags=["models"], summary="Download a model"
)
async def download(model_id: ModelId, request: Request, user: Caller) -> Response:
    """The whole pipeline saved with skops: `skops.io.load(path, trusted=card["skops_trusted"])`."""
    b = backend(request)
    record = await b.sync(b.svc.get_model, user, model_id)
    model, _card = await b.sync(b.svc.model_download, user, model_id)
    name = f"{record.name}-v{record.version}.skops"
    return Response(
        model, media_type="application/octet-stream", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/models/{model_id}/predict", response_model=PredictResult, tags=["models"], summary="Predict on a CSV")
async def predict(model_id: ModelId, file: CsvFile, request: Request, user: Caller) -> PredictResult:
    """Columns are checked against the training schema; the file of predictions: `GET /api/v1/predictions/{file}`."""
    b = backend(request)
    data = await _read(request, file)
    return await b.call(b.svc.predict(user, model_id, file.filename or "predict.csv", data), DATA_TASK_TIMEOUT)


@router.get("/predictions/{name}", response_class=Response, responses=CSV, tags=["models"], summary="A predictions file")
async def prediction_file(name: Annotated[str, Path(max_length=64)], request: Request, user: Caller) -> Response:
    b = backend(request)
    data = await b.sync(b.svc.prediction_file, user, name)
    return Response(data, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})
