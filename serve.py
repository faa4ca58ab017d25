"""The web server `make run` starts: the Streamlit app (app.py) plus, beside it, the sign-in routes and
the admins-only codec endpoint that lets the Temporal Web UI and CLI show decrypted payloads.

`streamlit run serve.py` finds `app` (an ASGI app) and serves it with uvicorn, honouring the usual
`--server.*` flags (port, address, TLS certificate and key).
"""
import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request

from core.config import load_settings
from core.sessions import SESSION_COOKIE
from core.storage import private_umask
from orchestration.client import payload_codec
from orchestration.codec_server import codec_routes
from ui.nav import PAGE_PATHS
from ui.signin import RequireSession, SignInRoutes

private_umask()   # staged uploads and everything else this process writes: owner only
_settings = load_settings()
_signin = SignInRoutes(_settings)
_codec = payload_codec(_settings, allow_plaintext=True)   # decoding for display only


async def _admin_only(request: Request) -> bool | None:
    """The Temporal UI sends the app's session cookie; the CLI sends `Authorization: Bearer <token>`
    (a token an admin creates on the Admin page). None: nobody signed in; False: not an admin."""
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE)
    user = await run_in_threadpool(_signin.sessions().user, token)
    return None if user is None else user.is_admin


app = st.App(
    "app.py",
    routes=[*_signin.routes(), *codec_routes(lambda: _codec, _admin_only, _settings.codec_origins)],
    middleware=[Middleware(RequireSession, pages=lambda: PAGE_PATHS, sessions=_signin.sessions)],
)
