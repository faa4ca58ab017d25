"""The web server `make run` starts: the Streamlit app (app.py) plus, beside it, the sign-in routes and
the admins-only codec endpoint that lets the Temporal Web UI and CLI show decrypted payloads.

`streamlit run serve.py` finds `app` (an ASGI app) and serves it with uvicorn, honouring the usual
`--server.*` flags (port, address, TLS certificate and key).
"""

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request

from core.audit import AuditLog
from core.config import load_settings
from core.sessions import SESSION_COOKIE
from core.storage import Storage, private_umask
from orchestration.client import payload_codec
from orchestration.codec_server import codec_routes
from ui.nav import PAGE_PATHS
from ui.signin import OncePer, RequireSession, SignInRoutes, client_address

private_umask()  # staged uploads and everything else this process writes: owner only
_settings = load_settings()
_signin = SignInRoutes(_settings)
_codec = payload_codec(_settings, allow_plaintext=True)  # decoding for display only


_audit = AuditLog(Storage(_settings.home))
_refusals_noted = OncePer(30.0)
_decodes_noted: set[tuple[str, str]] = set()  # (user, action) already audited by this process: one entry each, not one per call


async def _admin_only(request: Request) -> bool | None:
    """The Temporal UI sends the app's session cookie; the CLI sends `Authorization: Bearer <token>`
    (a decode token an admin creates on the Admin page; it cannot encode, which would mint input a
    worker accepts). None: nobody signed in; False: not an admin."""
    auth = request.headers.get("authorization", "")
    bearer = auth.lower().startswith("bearer ")
    token = auth[7:].strip() if bearer else request.cookies.get(SESSION_COOKIE)
    action = "codec.encode" if request.url.path.endswith("/encode") else "codec.decode"
    kinds = ("web", "codec") if action == "codec.decode" else ("web",)
    user = await run_in_threadpool(_signin.sessions().user, token, kinds)
    address = client_address(request)
    if user is None or not user.is_admin:
        reason = "not signed in" if user is None else "not an administrator"
        # one entry per caller, action and reason every 30 s: refused calls must not grow the log without bound
        if _refusals_noted(f"{address}|{action}|{reason}|{user.name if user else '-'}"):
            await run_in_threadpool(_audit.record, user.name if user else "-", action, "", "refused", address, reason)
        return None if user is None else False
    if (user.name, action) not in _decodes_noted:
        _decodes_noted.add((user.name, action))
        await run_in_threadpool(_audit.record, user.name, action, "", "ok", address, "first use by this server")
    return True


app = st.App(
    "app.py",
    routes=[*_signin.routes(), *codec_routes(lambda: _codec, _admin_only, _settings.codec_origins)],
    middleware=[Middleware(RequireSession, pages=lambda: PAGE_PATHS, sessions=_signin.sessions)],
)
