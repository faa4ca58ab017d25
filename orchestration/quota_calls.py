"""The service's quota calls: reserve a user's slots before a start, refresh them from Temporal, admin overrides."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode
from temporalio.types import MethodAsyncSingleParam

from core.accounts import User
from core.audit import AuditLog
from core.config import Settings
from core.quota_limits import LedgerEntry, Limits, OverQuota, Usage
from core.quotas import START_GRACE_S, Quotas
from orchestration.errors import Forbidden, QuotaExceeded, UserError
from orchestration.run_reader import QUERY_TIMEOUT
from orchestration.validation import valid_username

P = ParamSpec("P")
R = TypeVar("R")
Req = TypeVar("Req")


class QuotaCalls:
    """Mixed into TrainEasyService, whose client, quotas and audit log these calls use."""

    client: Client
    settings: Settings
    quotas: Quotas
    audit: AuditLog

    async def _reserve_run(self, user: User, run_id: str, kind: str, slots: int, min_slots: int | None = None) -> int:
        """Reserve `slots` training slots (at least `min_slots`) for a launch; returns the slots granted. The ledger
        may still count runs that ended: Temporal is asked about them (a describe per open entry, ~5 ms of every
        launch) only when counting them all as running would refuse the launch or cut its slots, or once after a
        refusal that another process's reservation caused in between."""
        refreshed = self.quotas.room(user.name) < slots
        if refreshed:
            await self._refresh_in_flight(user.name)
        try:
            return self._reserve(user, run_id, kind, slots, min_slots)
        except QuotaExceeded as refusal:
            if refreshed or refusal.limit != "max_runs_in_flight":
                raise
        await self._refresh_in_flight(user.name)  # the race lost: what Temporal says may still free a slot
        return self._reserve(user, run_id, kind, slots, min_slots)

    def _reserve(self, user: User, run_id: str, kind: str, slots: int, min_slots: int | None) -> int:
        stored = self.quotas.stored_bytes(user.name)
        return enforce_quota(self.quotas.reserve_run, user.name, run_id, kind, slots, min_slots, stored)

    async def _start_reserved(
        self,
        run: MethodAsyncSingleParam[Any, Req, Any],
        arg: Req,
        run_id: str,
        attributes: TypedSearchAttributes,
        memo: dict[str, str] | None = None,
    ) -> None:
        """Start a run or batch whose slots are reserved; a start that fails gives them back. The memo (encrypted
        like every payload) holds what links a run to another (`retry_of`)."""
        try:
            await self.client.start_workflow(
                run, arg, id=run_id, task_queue=self.settings.task_queue, search_attributes=attributes, memo=memo
            )
        except BaseException as err:
            self._unreserve(run_id, err)
            raise

    def _unreserve(self, run_id: str, err: BaseException) -> None:
        """The start failed: drop the reservation. If we cannot tell whether the server started it (timeout,
        cancelled call), keep it: the next refresh closes it once the grace period shows it does not exist."""
        ambiguous = isinstance(err, asyncio.CancelledError | TimeoutError) or (
            isinstance(err, RPCError) and err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
        )
        if not ambiguous:
            self.quotas.release(run_id)

    async def _refresh_in_flight(self, owner: str) -> None:
        """Close the ledger entries of the owner's runs that Temporal says have closed (a few describes:
        there are never more open entries than the owner's in-flight limit)."""
        entries = self.quotas.open_runs(owner)
        if not entries:
            return
        now = self.quotas.clock()

        async def closed(entry: LedgerEntry) -> bool:
            try:
                desc = await self.client.get_workflow_handle(entry.run_id).describe(rpc_timeout=QUERY_TIMEOUT)
            except RPCError as err:
                # not found: the start failed in a process that died, or has not happened yet (another process
                # between its commit and its start): closed only once older than the grace period
                return err.status == RPCStatusCode.NOT_FOUND and now - entry.started_at > START_GRACE_S
            return desc.status != WorkflowExecutionStatus.RUNNING

        done = await asyncio.gather(*(closed(e) for e in entries))
        self.quotas.mark_closed(e.run_id for e, d in zip(entries, done) if d)

    async def usage(self, user: User) -> Usage:
        """The user's runs in flight, launches in the last minute and stored bytes, each with its limit."""
        await self._refresh_in_flight(user.name)
        return self.quotas.usage(user.name)

    def limits(self, user: User) -> Limits:
        return self.quotas.limits_for(user.name)

    # admin only
    def _require_admin(self, admin: User, action: str | None = None, obj: str = "") -> None:
        if not admin.is_admin:
            if action:
                self.audit.record(admin.name, action, obj, "refused", admin.address, "not an administrator")
            raise Forbidden("Only an administrator can see or change other users' quotas.")

    async def quota_overview(self, admin: User, usernames: list[str]) -> list[Usage]:
        """Every named user's usage and limits (overridden limits are in `usage.limits.overridden`)."""
        self._require_admin(admin)
        names = [valid_username(n) for n in usernames]
        return list(await asyncio.gather(*(self.usage(User(n)) for n in names)))

    def default_limits(self, admin: User) -> Limits:
        self._require_admin(admin)
        return self.quotas.defaults()

    def set_quota_override(self, admin: User, username: str, **limits: int | None) -> Limits:
        """Override some of a user's limits (None puts one back to the default); returns the new limits."""
        self._require_admin(admin, "admin.quota_set", username)
        detail = ", ".join(f"{k}={'default' if v is None else v}" for k, v in sorted(limits.items()))
        try:
            result = self.quotas.set_override(valid_username(username), set_by=admin.name, **limits)
        except (ValueError, UserError) as exc:
            self.audit.record(admin.name, "admin.quota_set", username, "refused", admin.address, str(exc))
            raise UserError(str(exc)) from None
        self.audit.record(admin.name, "admin.quota_set", username, "ok", admin.address, detail)
        return result

    def clear_quota_override(self, admin: User, username: str) -> Limits:
        """Back to the defaults for every limit of that user."""
        self._require_admin(admin, "admin.quota_clear", username)
        self.quotas.clear_override(valid_username(username))
        self.audit.record(admin.name, "admin.quota_clear", username, "ok", admin.address)
        return self.quotas.limits_for(username)


def enforce_quota(reserve: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call a Quotas.reserve_* function, turning a refusal into the UserError the pages and API show."""
    try:
        return reserve(*args, **kwargs)
    except OverQuota as over:
        raise QuotaExceeded(over.refusal) from None
