"""What a run's stages read and keep: its folder, the prepared data, the split and the fitted model.

Shared by the training stages (orchestration/training_activities.py, fit_stage.py, cv_stage.py). Each value comes
from this worker's memory when an earlier stage of the run left it here and its file is unchanged
(orchestration/stage_cache.py), else from the file. Heavy libraries are imported inside the bodies, so that the
UI can import the workflow definitions cheaply.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from core.storage import Storage
from orchestration.activity_errors import refuse
from orchestration.contracts import TrainInput
from orchestration.stage_cache import RUNS, file_id

TRUSTED_FILE = "model-trusted.json"  # beside model.skops: what the model card tells skops to trust (model_store)

if TYPE_CHECKING:  # heavy: imported in the bodies
    import numpy as np
    from sklearn.pipeline import Pipeline

    from ml.model_spec import ModelSpec
    from ml.training import Prepared


class RunData:
    """One run's files under the storage root, read once per worker process while they stay the same."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def run_dir(self, inp: TrainInput) -> Path:
        return self.storage.run_dir(inp.request.owner, inp.run_id)

    def prepared(self, inp: TrainInput) -> tuple[ModelSpec, Prepared]:
        """The model and the prepared data: from this process's memory when an earlier stage of the run made
        them from the same file here (orchestration.stage_cache), else read and prepared. Read-only: shared."""
        import pandas as pd

        from core.datasets import dataset_path
        from ml.catalog import get_model
        from ml.model_spec import ParamError
        from ml.training import DataError, prepare

        req = inp.request
        path = dataset_path(self.storage, req.owner, req.dataset_id)
        if not path.is_file():
            raise refuse("The dataset no longer exists; upload it again.")

        def read() -> tuple[ModelSpec, Prepared]:
            try:
                spec = get_model(req.model)
                spec.validate(req.params)
                return spec, prepare(pd.read_parquet(path), req.target, spec, req.include_columns)
            except (DataError, ParamError) as exc:
                raise refuse(str(exc)) from None

        return RUNS.fetch(inp.run_id, "prepared", lambda: (file_id(path), repr(req)), read)

    def split(self, inp: TrainInput) -> dict[str, np.ndarray]:
        """The row indices the preprocess stage wrote to split.npz: train, test and each fold's."""
        import numpy as np

        path = self.run_dir(inp) / "split.npz"

        def read() -> dict[str, np.ndarray]:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}

        return RUNS.fetch(inp.run_id, "split", lambda: file_id(path), read)

    def model_store(self, inp: TrainInput) -> Callable[[Pipeline], None]:
        """What the fit's child calls with the fitted model (picklable, ml.child_fit): it writes model.skops (what a
        stage on another worker, and the registry, read) and beside it the types its card tells skops to trust
        (`ml.persist.store_model`), while the model comes to this worker and before the child draws the curve."""
        from ml.persist import store_model

        run_dir = self.run_dir(inp)
        return partial(store_model, run_dir / "model.skops", run_dir / TRUSTED_FILE)

    def keep_model(self, inp: TrainInput, pipeline: Pipeline) -> None:
        """The fitted model, which its child stored (`model_store`), kept in memory for this run's evaluate and
        save stages here."""
        path = self.run_dir(inp) / "model.skops"
        RUNS.keep(inp.run_id, "model", file_id(path), pipeline)

    def skops_trusted(self, inp: TrainInput) -> list[str] | None:
        """The trusted types the fit's child stored beside the run's model file (`model_store`); worked out now from
        the file if they are missing (a model fitted before they were kept) or older than it (the file written again
        after them, by a worker from before them: a retried fit on another worker), never another model's list."""
        import json

        from ml.persist import skops_trusted

        run_dir = self.run_dir(inp)
        model, kept = run_dir / "model.skops", run_dir / TRUSTED_FILE
        try:
            if kept.stat().st_mtime_ns >= model.stat().st_mtime_ns:  # store_model writes it after the model file
                trusted: list[str] | None = json.loads(kept.read_bytes())
                return trusted
        except FileNotFoundError:
            pass
        return skops_trusted(model)

    def model(self, inp: TrainInput) -> Pipeline:
        from ml.persist import load_model

        path = self.run_dir(inp) / "model.skops"
        return RUNS.fetch(inp.run_id, "model", lambda: file_id(path), lambda: load_model(path))

    def release(self, run_id: str) -> None:
        """The run's last stage: what it kept in this process goes."""
        RUNS.release(run_id)
