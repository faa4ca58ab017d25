"""`@audited`: one audit entry per user action that goes through the service (pages and API alike).

ok with the object it acted on; refused with the reason a user was shown; error in plain words when
Temporal could not be reached (or the call was given up before it answered), else with the exception's type
(never its text, which can hold paths). Reads are not audited, only actions.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar, cast

from core.accounts import User
from core.audit import AuditLog
from orchestration.health import UNREACHABLE, unreachable

log = logging.getLogger("traineasy.audit")
Target = Callable[[tuple[Any, ...], Any], object]  # (call args after the user, result or None if refused) -> object
Method = TypeVar("Method", bound=Callable[..., Any])
ABANDONED = "Given up before Temporal answered"  # the app stopped waiting (an outage seen meanwhile)


def error_detail(err: BaseException) -> str:
    """An error's audit detail: plain words for an outage, else the exception's type (never its text)."""
    if isinstance(err, asyncio.CancelledError):
        return ABANDONED
    return UNREACHABLE if unreachable(err) else type(err).__name__


class Audits(Protocol):
    """A service whose actions are audited: it holds the audit log."""

    audit: AuditLog


def first_arg(args: tuple[Any, ...], _result: Any) -> object:
    return args[0] if args else ""


def audited(action: str, target: Target = first_arg, refused: tuple[type[Exception], ...] = ()) -> Callable[[Method], Method]:
    """Decorate a service method `(self, user, *args)`, keeping its signature; `refused` are the exception
    types that mean "the user asked for something that cannot be done" (the service's UserError)."""

    def record(service: Audits, user: User, args: tuple[Any, ...], result: Any, outcome: str, detail: str = "") -> None:
        try:
            service.audit.record(user.name, action, target(args, result), outcome, user.address, detail)
        except Exception:  # the audit must not turn a done action into an error the user retries
            log.exception("could not record %s by %s", action, user.name)

    @contextmanager
    def recording(service: Audits, user: User, args: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
        outcome: dict[str, Any] = {}  # the body puts the method's result here
        try:
            yield outcome
        except refused as err:
            record(service, user, args, None, "refused", str(err))
            raise
        except (Exception, asyncio.CancelledError) as err:
            record(service, user, args, None, "error", error_detail(err))
            raise
        record(service, user, args, outcome.get("result"), "ok")

    def wrap(method: Method) -> Method:
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def run_async(self: Audits, user: User, *args: Any, **kwargs: Any) -> Any:
                with recording(self, user, args) as outcome:
                    outcome["result"] = await method(self, user, *args, **kwargs)
                return outcome["result"]

            return cast(Method, run_async)

        @functools.wraps(method)
        def run(self: Audits, user: User, *args: Any, **kwargs: Any) -> Any:
            with recording(self, user, args) as outcome:
                outcome["result"] = method(self, user, *args, **kwargs)
            return outcome["result"]

        return cast(Method, run)

    return wrap
