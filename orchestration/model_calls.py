"""The service's model registry calls: list, download, delete, retention (preview, then confirm), and reading
prediction files."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from core.accounts import User
from core.audit import AuditLog
from core.model_record import ModelRecord
from core.names import PREDICTION_FILE_RE
from core.registry import Registry, RetentionResult
from core.retention import RetentionError, RetentionPlan
from core.storage import Storage
from orchestration.auditing import audited
from orchestration.data_activities import PREVIEW_ROWS, preview_file
from orchestration.errors import NotFound, UserError

MAX_TAG = 40  # characters in a tag


class ModelCalls:
    """Mixed into TrainEasyService, whose registry, storage and audit log these calls use."""

    registry: Registry
    storage: Storage
    audit: AuditLog

    def list_models(self, user: User) -> list[ModelRecord]:
        return self.registry.list(user.name)

    def get_model(self, user: User, model_id: int) -> ModelRecord:
        record = self.registry.get(user.name, model_id)
        if record is None:
            raise NotFound("No such model.")
        return record

    def model_card(self, user: User, model_id: int) -> dict[str, Any]:
        """The card of one of the user's models as it is downloaded: what the registry holds, and when."""
        record = self.get_model(user, model_id)
        return {**record.card, "registered_at": record.created_at}

    @audited("download", lambda a, r: f"model {a[0]}", refused=(UserError,))
    def model_download(self, user: User, model_id: int) -> tuple[bytes, bytes]:
        """(model file, model card JSON) of one of the user's models."""
        record = self.get_model(user, model_id)
        card = json.dumps(self.model_card(user, model_id), indent=2, default=str).encode()
        try:
            return self.registry.model_file(record).read_bytes(), card
        except FileNotFoundError:  # deleted under it (a retention clean-up at the same moment): no path shown
            raise NotFound("This model's file is gone (it was just deleted); list the models again.") from None

    @audited("delete", lambda a, r: f"model {a[0]}", refused=(UserError,))
    def delete_model(self, user: User, model_id: int) -> int:
        self.get_model(user, model_id)
        return self.registry.delete(user.name, model_id)

    def keep_last(self, user: User) -> int | None:
        """The N the user last confirmed for retention (None: never set)."""
        return self.registry.keep_last(user.name)

    def retention_preview(self, user: User, keep_last: int) -> RetentionPlan:
        """Exactly what keeping the last `keep_last` versions of each (dataset, target, model) would delete,
        and the older versions a tag keeps; nothing is deleted."""
        try:
            return self.registry.retention_plan(user.name, keep_last)
        except RetentionError as exc:
            raise UserError(str(exc)) from None

    @audited("retention", lambda a, r: f"keep last {a[0]}: {len(r.deleted) if r else len(a[1])} versions", refused=(UserError,))
    def apply_retention(self, user: User, keep_last: int, model_ids: Collection[int]) -> RetentionResult:
        """Delete the versions the user confirmed from a preview, all of them or none (UserError: the models
        changed since the preview)."""
        # strictly whole numbers: 7.9 must not become model 7, nor "x" a crash
        ids = list(model_ids) if isinstance(model_ids, Collection) and not isinstance(model_ids, (str, bytes)) else None
        if ids is None or any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
            raise UserError("The versions to delete must be given by their model ids (whole numbers) from a preview.")
        try:
            return self.registry.apply_retention(user.name, keep_last, frozenset(ids))
        except RetentionError as exc:
            raise UserError(str(exc)) from None

    def _prediction_path(self, user: User, name: str) -> Path:
        if not PREDICTION_FILE_RE.fullmatch(name or ""):
            raise NotFound("No such prediction file.")
        path = self.storage.user_dir(user.name) / "predictions" / name
        if not path.is_file():
            raise NotFound("No such prediction file.")
        return path

    @audited("download", refused=(UserError,))
    def prediction_file(self, user: User, name: str) -> bytes:
        return self._prediction_path(user, name).read_bytes()

    def prediction_preview(self, user: User, name: str, rows: int = PREVIEW_ROWS) -> list[dict[str, Any]]:
        """The first rows of a predictions file with their true values ('=1+1' is shown as =1+1: the file
        itself is formula-safe). Read once, from what the worker kept beside the file, which then goes;
        without it (a file from before), from the file, typed as pandas reads it (NaN becomes None)."""
        path = self._prediction_path(user, name)
        kept = preview_file(path)
        if kept.is_file():
            try:
                return list(json.loads(kept.read_text()))[:rows]
            finally:
                kept.unlink(missing_ok=True)
        import pandas as pd  # only here: most service calls need no pandas

        frame = pd.read_csv(path, nrows=rows)
        return json.loads(frame.to_json(orient="records"))

    # --- tags and names -----------------------------------------------------------------------------
    @audited("tag", lambda a, r: f"model {a[0]}", refused=(UserError,))
    def tag_model(self, user: User, model_id: int, tag: str) -> ModelRecord:
        """Tag one of the user's models: a tagged version is never deleted by retention."""
        record = self.get_model(user, model_id)
        text = " ".join(str(tag or "").split())
        if not text:
            raise UserError("Write a tag first, such as “keep” or “best”.")
        if len(text) > MAX_TAG:
            raise UserError(f"A tag has at most {MAX_TAG} characters.")
        tagged = self.registry.add_tag(user.name, record.run_id, text)
        if tagged is None:
            raise NotFound("No such model.")
        return tagged

    @audited("untag", lambda a, r: f"model {a[0]}", refused=(UserError,))
    def untag_model(self, user: User, model_id: int, tag: str) -> ModelRecord:
        """Take a tag off one of the user's models (retention may then delete it)."""
        self.get_model(user, model_id)
        record = self.registry.remove_tag(user.name, model_id, tag)
        if record is None:
            raise NotFound("No such model.")
        return record

    def known_dataset_names(self, user: User) -> dict[str, str]:
        """Dataset id -> name of the user's datasets that the registry knows of, deleted ones included."""
        return self.registry.known_dataset_names(user.name)
