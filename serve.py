"""The web server `make run` starts: the Streamlit app (app.py) plus the sign-in routes beside it.

`streamlit run serve.py` finds `app` (an ASGI app) and serves it with uvicorn, honouring the usual
`--server.*` flags (port, address, TLS certificate and key).
"""
import streamlit as st
from starlette.middleware import Middleware

from core.config import load_settings
from core.storage import private_umask
from ui.nav import PAGE_PATHS
from ui.signin import RequireSession, SignInRoutes

private_umask()   # staged uploads and predictions written by this process: owner only
_signin = SignInRoutes(load_settings())
app = st.App(
    "app.py",
    routes=_signin.routes(),
    middleware=[Middleware(RequireSession, pages=lambda: PAGE_PATHS, sessions=_signin.sessions)],
)
