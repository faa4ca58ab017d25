"""orchestration.retry_calls: a run is retried as a new, linked run with the same request (edited params
merged), only once it ended without a model, and audited as a retry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from core.accounts import User
from core.audit import AuditLog
from core.storage import Storage
from orchestration.contracts import TrainRequest
from orchestration.errors import Conflict, InvalidInput
from orchestration.retry_calls import RETRY_OF, RetryCalls
from orchestration.views import RunView

RUN = "train-alice-" + "a" * 32
ALICE = User("alice")


@dataclass
class FakeService(RetryCalls):
    audit: AuditLog
    view: RunView
    launched: list[tuple[TrainRequest, dict[str, str] | None]] = field(default_factory=list)

    async def get_run(self, user: User, run_id: str) -> RunView:
        return self.view

    async def _launch_training(self, user: User, request: TrainRequest, memo: dict[str, str] | None = None) -> str:
        self.launched.append((request, memo))
        return "train-alice-" + "b" * 32


def view(status: str, request: TrainRequest | None) -> RunView:
    return RunView(RUN, status, "ridge", "d", "y", datetime.now(UTC), 1.0, "fit", 50.0, request=request)


def service(tmp_path, status: str, request: TrainRequest | None) -> FakeService:
    return FakeService(AuditLog(Storage(tmp_path)), view(status, request))


async def test_a_failed_run_is_started_again_with_edited_params_and_linked(tmp_path):
    original = TrainRequest("alice", "d", "y", "ridge", {"alpha": 1.0, "fit_intercept": True}, seed=7, include_columns=["id"])
    svc = service(tmp_path, "failed", original)
    new_id = await svc.retry_run(ALICE, RUN, {"alpha": 3.0})
    ((request, memo),) = svc.launched
    assert request.params == {"alpha": 3.0, "fit_intercept": True} and request.seed == 7 and request.include_columns == ["id"]
    assert original.params == {"alpha": 1.0, "fit_intercept": True}  # the original's record is untouched
    assert memo == {RETRY_OF: RUN}
    entry = AuditLog(Storage(tmp_path)).query(action_prefix="retry")[0]
    assert (entry.object, entry.outcome) == (f"{RUN} as {new_id}", "ok")


@pytest.mark.parametrize("status", ["running", "completed"])
async def test_a_run_that_is_running_or_has_its_model_is_not_retried(tmp_path, status):
    svc = service(tmp_path, status, TrainRequest("alice", "d", "y", "ridge"))
    with pytest.raises(Conflict):
        await svc.retry_run(ALICE, RUN)
    assert svc.launched == []
    assert AuditLog(Storage(tmp_path)).query(action_prefix="retry")[0].outcome == "refused"


async def test_an_unreadable_request_or_bad_params_are_refused(tmp_path):
    with pytest.raises(Conflict, match="cannot be read"):
        await service(tmp_path, "cancelled", None).retry_run(ALICE, RUN)
    bad: Any = ["alpha"]
    with pytest.raises(InvalidInput) as err:
        await service(tmp_path, "cancelled", TrainRequest("alice", "d", "y", "ridge")).retry_run(ALICE, RUN, bad)
    assert err.value.field == "params"
