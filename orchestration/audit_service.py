"""The audit log as administrators read it: every call checks the role; exports and chain checks are
themselves recorded."""

from __future__ import annotations

from typing import Any

from core.accounts import User
from core.audit import AuditEntry, AuditLog, VerifyResult
from core.storage import Storage
from orchestration.errors import Forbidden


class AuditService:
    def __init__(self, storage: Storage) -> None:
        self.log = AuditLog(storage)

    def _admin(self, actor: User) -> None:
        if not actor.is_admin:
            raise Forbidden("Only an administrator can read the audit log.")

    def actors(self, admin: User) -> list[str]:
        self._admin(admin)
        return self.log.actors()

    def entries(self, admin: User, limit: int | None, **criteria: Any) -> list[AuditEntry]:
        """Newest first; `criteria` as AuditLog.query takes them (actor, action_prefix, outcome, since, until)."""
        self._admin(admin)
        return self.log.query(**criteria, limit=limit)

    def export_csv(self, admin: User, limit: int | None, **criteria: Any) -> bytes:
        """The matching entries, oldest first as a log reads, formula-safe."""
        data = self.log.export_csv(self.entries(admin, limit, **criteria)[::-1])
        described = ", ".join(f"{k}={v}" for k, v in criteria.items() if v is not None) or "all entries"
        self.log.record(admin.name, "audit.export", address=admin.address, detail=described)
        return data

    def verify(self, admin: User) -> VerifyResult:
        self._admin(admin)
        result = self.log.verify()
        outcome = "ok" if result.ok else "error"
        self.log.record(admin.name, "audit.verify", outcome=outcome, address=admin.address, detail=str(result))
        return result
