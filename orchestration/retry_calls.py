"""The service's retry of one training run: a new run with the original's request (optionally with edited
parameters), linked to it by its memo. A batch's failed children are retried by BatchCalls.retry_failed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from core.accounts import User
from orchestration.auditing import audited
from orchestration.contracts import TrainRequest
from orchestration.errors import Conflict, InvalidInput, UserError
from orchestration.views import RunView

RETRY_OF = "retry_of"  # the memo key that names the run a retry repeats
RETRYABLE = ("failed", "cancelled", "terminated", "timed_out")


class RetryCalls:
    """Mixed into TrainEasyService, which reads the run (ownership included) and launches the new one."""

    get_run: Callable[[User, str], Awaitable[RunView]]
    _launch_training: Callable[..., Awaitable[str]]

    @audited("retry", lambda a, r: f"{a[0]} as {r}" if r else a[0], refused=(UserError,))
    async def retry_run(self, user: User, run_id: str, params: dict[str, Any] | None = None) -> str:
        """Start the run again as it was asked for, with `params` replacing some of its parameters; the new
        run's id. Only a run that ended without a model (failed, cancelled, terminated, timed out) is retried;
        the new run passes the same validation, quotas and audit as any launch."""
        view = await self.get_run(user, run_id)
        if view.status not in RETRYABLE:
            raise Conflict(f"Only a failed or cancelled run can be retried; this one is {view.status.replace('_', ' ')}.")
        if view.request is None:
            raise Conflict("The request this run was started with cannot be read, so it cannot be repeated: start a new run.")
        if params is not None and not isinstance(params, dict):
            raise InvalidInput("The edited parameters must be a mapping of names to values.", "params")
        original: TrainRequest = view.request
        request = replace(
            original,
            params={**original.params, **(params or {})},
            include_columns=list(original.include_columns),
        )
        return await self._launch_training(user, request, {RETRY_OF: run_id})
