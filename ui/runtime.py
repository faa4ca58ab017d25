"""One Temporal client per Streamlit process, on one background event loop; pages call it synchronously.

The Temporal client is asyncio-based and not thread-safe, while Streamlit runs each session in its own
thread: so every call is submitted to the one loop that owns the client.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.accounts import User
from core.config import load_settings
from core.storage import Storage
from orchestration.account_service import AccountService
from orchestration.audit_service import AuditService
from orchestration.client import APP_RETRIES, connect
from orchestration.engine_watch import EngineWatch, temporal_given_up
from orchestration.errors import UserError
from orchestration.health import PROBE_TIMEOUT, UNREACHABLE, probe_temporal, unreachable
from orchestration.service import TrainEasyService
from ui.auth import audit_log
from ui.sync_service import SyncService, Unavailable
from ui.text import md

# what this module defines; SyncService and Unavailable are imported from ui.sync_service, where they are defined
__all__ = ["NOTICE_KEY", "accounts_service", "audit", "audit_service", "guard", "service"]
log = logging.getLogger("traineasy.ui")
NOTICE_KEY = "engine_notice"  # guard()'s last outage message, shown again after the banner's rerun (ui/engine_banner.py)


@st.cache_resource(show_spinner=False, on_release=lambda svc: svc.close())
def _backend() -> SyncService:
    """The loop, the client and the engine watch of this process. The client connects lazily: the app starts
    and serves while Temporal is down, and its calls reach the server again once it is back."""
    settings = load_settings()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="temporal-client-loop", daemon=True).start()
    try:
        client = asyncio.run_coroutine_threadsafe(connect(settings, lazy=True, retries=APP_RETRIES), loop).result(10)
    except Exception as exc:  # a bad address or TLS setting, not an outage; not cached: the next rerun tries again
        loop.call_soon_threadsafe(loop.stop)
        log.warning("cannot set up the Temporal client for %s: %s", settings.temporal_target, exc)  # the detail: log only
        raise Unavailable(f"The training engine (Temporal) is not reachable at {settings.temporal_target}") from None
    storage = Storage(settings.home)
    watch = EngineWatch(lambda: probe_temporal(client), given_up=lambda: temporal_given_up(storage))
    watch.start(loop)
    watch.wait_first(PROBE_TIMEOUT + 1)  # the first page already knows whether the engine answers
    return SyncService(loop, TrainEasyService(client, settings), watch)


def service() -> SyncService:
    return _backend()


@st.cache_resource(show_spinner=False)
def audit_service() -> AuditService:
    return AuditService(Storage(load_settings().home))


@st.cache_resource(show_spinner=False)
def accounts_service() -> AccountService:
    """Accounts need no Temporal: they keep working while the engine is down."""
    return AccountService(load_settings())


def audit(action: str, obj: str = "", *, user: User, outcome: str = "ok", detail: str = "") -> None:
    """Record what a user did from a page (the service records what goes through it)."""
    audit_log().record(user.name, action, obj, outcome, user.address, detail)


@contextmanager
def guard(action: str = "That") -> Iterator[None]:
    """Turn failures into a message on the page; never a traceback."""
    try:
        yield
    except UserError as err:
        st.error(md(str(err)))
    except Unavailable as err:  # plainly, whatever the RPC said; the banner says the rest
        notice = f"{action} cannot be done right now: {err}. It works again once Temporal is back."
        st.session_state[NOTICE_KEY] = notice  # the banner's rerun for the outage would wipe it: kept for that run
        st.warning(notice)
    except TimeoutError:
        st.error(f"{action} took too long to answer. Temporal or the workers may be overloaded; try again shortly.")
    except Exception as exc:
        if unreachable(exc):  # a call that bypassed the facade's mapping: the same plain words
            notice = f"{action} cannot be done right now: {UNREACHABLE}. It works again once Temporal is back."
            st.session_state[NOTICE_KEY] = notice
            st.warning(notice)
            return
        log.exception("unexpected error")
        st.error(f"{action} failed unexpectedly. The details are in the app log.")
