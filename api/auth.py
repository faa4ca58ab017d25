"""Who is calling: `Authorization: Bearer <token>`, a per-user API token (core/api_tokens.py) created on the
Account page. A missing, unknown or revoked token, or one of a disabled account, is 401; the user the token
belongs to is then the acting user of every service call, so ownership is the service's as for the pages."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.backend import Backend
from core.accounts import User

bearer = HTTPBearer(auto_error=False, description="An API token from your Account page in the app (`te_…`)")


def backend(request: Request) -> Backend:
    found: Backend = request.app.state.backend
    return found


def client_address(request: Request) -> str:
    """The connection's own address (uvicorn believes X-Forwarded-For only from TRAINEASY_TRUSTED_PROXIES)."""
    return request.client.host if request.client else ""


async def current_user(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
    """The token's user with the caller's address (for the audit log), or 401."""
    refused = HTTPException(401, "A valid API token is needed: Authorization: Bearer <token>.", {"WWW-Authenticate": "Bearer"})
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise refused
    found = getattr(request.state, "api_caller", None)  # api/gate.py checked it before the body was read
    if found is None:
        found = await backend(request).sync(backend(request).tokens.user, credentials.credentials)
    if found is None:
        raise refused
    user, token_id = found
    request.state.user, request.state.token_id = user.name, token_id  # for the audit entry of this call
    return replace(user, address=client_address(request))
