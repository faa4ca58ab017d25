"""Account management for pages, the CLI and (later) the API: authorised, audited, one place.

Disabling a user, resetting or changing a password ends that user's sessions at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from core.accounts import Account, AccountError, Accounts, User, check_password_rules, new_password
from core.api_tokens import ApiToken, ApiTokens, TokenError
from core.audit import AuditLog
from core.config import Settings
from core.sessions import LoginThrottle, Sessions
from core.storage import Storage


class AccountService:
    def __init__(self, settings: Settings) -> None:
        self.storage = storage = Storage(settings.home)
        self.accounts = Accounts(storage)
        self.sessions = Sessions(storage, settings.session_lifetime)
        self.tokens = ApiTokens(storage)
        self.audit = AuditLog(storage)

    def _admin(self, actor: User, action: str, obj: str) -> None:
        if not actor.is_admin:
            self.audit.record(actor.name, action, obj, "refused", actor.address, "not an administrator")
            raise AccountError("Only administrators can do that.")

    def _do(self, actor: User, action: str, obj: str, change: Callable[[], object], detail: str = "") -> None:
        """Run one admin change, recording it whether it succeeds or is refused."""
        self._admin(actor, action, obj)
        try:
            change()
        except AccountError as err:
            self.audit.record(actor.name, action, obj, "refused", actor.address, str(err))
            raise
        self.audit.record(actor.name, action, obj, "ok", actor.address, detail)

    # --- the signed-in user ----------------------------------------------------------------------
    def change_password(self, user: User, current: str, new: str, again: str, keep_session: str | None) -> int:
        """Returns how many other sessions of the user were ended."""
        try:
            if self.accounts.verify_password(user.name, current) is None:
                raise AccountError("The current password is wrong.")
            if new != again:
                raise AccountError("The two new passwords differ.")
            self.accounts.set_password(user.name, check_password_rules(new))
        except AccountError as err:
            self.audit.record(user.name, "password.change", user.name, "refused", user.address, str(err))
            raise
        ended = self.sessions.revoke_user(user.name, keep=keep_session)
        revoked = self.tokens.revoke_all(user.name)  # a token minted by whoever knew the old password ends too
        detail = f"{ended} other session(s) ended, {revoked} API token(s) revoked"
        self.audit.record(user.name, "password.change", user.name, "ok", user.address, detail)
        return ended

    # --- the signed-in user's API tokens (the REST API's credentials, api/auth.py) -----------------
    def api_tokens(self, user: User) -> list[ApiToken]:
        return self.tokens.list(user.name)

    def create_api_token(self, user: User, name: str) -> tuple[ApiToken, str]:
        """A new token of the user's own: (its listing, its secret to show once). A TokenError says why not."""
        try:
            token, secret = self.tokens.create(user.name, name)
        except TokenError as err:
            self.audit.record(user.name, "token.create", str(name)[:60], "refused", user.address, str(err))
            raise
        self.audit.record(user.name, "token.create", token.token_id, "ok", user.address, token.name)
        return token, secret

    def revoke_api_token(self, user: User, token_id: str) -> ApiToken:
        """Revoke one of the user's own tokens: the next request with it gets 401."""
        try:
            token = self.tokens.revoke(user.name, token_id)
        except TokenError as err:
            self.audit.record(user.name, "token.revoke", str(token_id)[:16], "refused", user.address, str(err))
            raise
        self.audit.record(user.name, "token.revoke", token.token_id, "ok", user.address, token.name)
        return token

    # --- administrators ----------------------------------------------------------------------------
    def list_accounts(self, actor: User) -> list[Account]:
        self._admin(actor, "admin.user_list", "")
        return self.accounts.list()

    def add_user(self, actor: User, name: str, role: str = "user", email: str = "", password: str | None = None) -> str:
        """Create an account; returns its password (generated unless given), to hand over once."""
        password = password or new_password()
        self._do(actor, "admin.user_add", name, lambda: self.accounts.add(name, password, role, email), f"role {role}")
        return password

    def set_disabled(self, actor: User, name: str, disabled: bool) -> None:
        if disabled and name == actor.name:
            raise AccountError("You cannot disable your own account.")
        action = "admin.user_disable" if disabled else "admin.user_enable"
        self._do(actor, action, name, lambda: self.accounts.set_disabled(name, disabled))
        if disabled:
            self.sessions.revoke_user(name)
            self.tokens.revoke_all(name)  # enabled again, the account starts without them: new ones are made anew

    def reset_password(self, actor: User, name: str) -> str:
        password = new_password()
        self._do(actor, "admin.password_reset", name, lambda: self.accounts.set_password(name, password))
        self.sessions.revoke_user(name)
        self.tokens.revoke_all(name)  # the account's API tokens end with its old password
        return password

    def locked_names(self, actor: User) -> dict[str, datetime]:
        """User names locked by failed sign-ins now, with when the lock ends."""
        self._admin(actor, "admin.user_list", "")
        return LoginThrottle(self.storage).locked_names()

    def unlock(self, actor: User, name: str) -> None:
        """Lift a sign-in lock: someone guessing at a name must not keep its owner out."""
        self._do(actor, "admin.unlock", name, lambda: LoginThrottle(self.storage).unlock(name))

    def cli_token(self, actor: User) -> str:
        """A one-hour token for an admin's Temporal CLI: it decodes through the codec endpoint and is no
        browser session (it opens no page)."""
        self._admin(actor, "admin.cli_token", actor.name)
        token = Sessions(self.storage, timedelta(hours=1)).create(actor.name, actor.address, kind="codec")
        self.audit.record(actor.name, "admin.cli_token", actor.name, "ok", actor.address, "valid 1 h")
        return token

    def set_role(self, actor: User, name: str, role: str) -> None:
        self._do(actor, "admin.role_change", name, lambda: self.accounts.set_role(name, role), f"to {role}")
        self.sessions.revoke_user(name)  # the new role applies from the next sign-in, never half-way
