"""Permanent storage errors, classified once for every activity: a worker turns a permission error, a full
disk or a read-only file system into a non-retryable failure with a plain message (no server path), so it
fails at once instead of being retried five times and shown raw (orchestration.activity_errors)."""

from __future__ import annotations

from typing import Any

from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from orchestration.activity_errors import storage_refusal


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except OSError as exc:
            refusal = storage_refusal(exc)
            if refusal is None:
                raise
            raise refusal from None  # the OS error's text holds the server's path: not passed on


class ClassifyStorageErrors(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
