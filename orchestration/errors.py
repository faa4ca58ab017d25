"""The typed errors the service raises; pages and the API turn them into messages at the edge."""

from __future__ import annotations

from core.quota_limits import Refusal


class UserError(Exception):
    """Something the user asked for cannot be done; the message says why and is safe to show."""


class NotFound(UserError):
    """No such thing, or not the acting user's: the two look the same from outside."""


class Forbidden(UserError):
    """The acting user may not do this (an admin-only call by a non-admin)."""


class InvalidInput(UserError):
    """A field of the request is out of bounds or does not fit the data; `field` names it (the API's 422)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class Conflict(UserError):
    """The request is well-formed but the object's state does not allow it (cancel a finished run)."""


class NotReady(UserError):
    """No worker process serves this now (or they are being restarted): nothing was started; try again later."""


class QuotaExceeded(UserError):
    """A per-user quota refused the request and nothing was started. The message says which limit, the
    figures and when it frees up; the same figures are attributes (see core.quota_limits.Refusal)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal
        self.limit = refusal.limit
        self.used, self.asked, self.allowed = refusal.used, refusal.asked, refusal.allowed
        self.retry_after_s = refusal.retry_after_s
