"""Work is bound to the workflow that carries it: a worker refuses an activity whose input names another
run or another owner than its workflow id does.

Payloads are encrypted, but a valid ciphertext can be copied from one workflow into another by anyone
who can reach Temporal (a replay of alice's run under a `train-bob-…` id). The workflow id is set by
the service (`<kind>-<owner>-<uuid>`) and checked here against what the input says.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from core.names import InvalidName, parse_run_id

MISMATCH = "ForeignInput"


def check_binding(workflow_id: str, arg: Any) -> None:
    """Raise a non-retryable error unless `arg` belongs to the workflow `workflow_id`."""

    def refuse(why: str) -> ApplicationError:
        return ApplicationError(f"Refused: {why}.", type=MISMATCH, non_retryable=True)

    try:
        _, owner = parse_run_id(workflow_id)
    except InvalidName:
        raise refuse("this workflow was not started by TrainEasy") from None
    request = getattr(arg, "request", arg)  # TrainInput carries a TrainRequest
    if getattr(request, "owner", owner) != owner:
        raise refuse("the input belongs to another user than the workflow")
    run_id = getattr(arg, "run_id", None)
    if run_id is not None and hasattr(arg, "request") and run_id != workflow_id:
        raise refuse("the input belongs to another run")
    if run_id is not None and not hasattr(arg, "request"):  # e.g. tagging a batch's best run: the owner's own
        try:
            if parse_run_id(run_id)[1] != owner:
                raise refuse("the input names another user's run")
        except InvalidName:
            raise refuse("the input names no run") from None


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        workflow_id = activity.info().workflow_id or ""  # not started by a workflow: refused below
        for arg in input.args:
            check_binding(workflow_id, arg)
        return await super().execute_activity(input)


class BindInputsToWorkflow(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
