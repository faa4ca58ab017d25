"""One Temporal client per Streamlit process, on one background event loop; pages call it synchronously.

The Temporal client is asyncio-based and not thread-safe, while Streamlit runs each session in its own
thread: so every call is submitted to the one loop that owns the client.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from core.accounts import User
from core.config import load_settings
from orchestration.account_service import AccountService
from orchestration.client import connect
from orchestration.service import NotFound, TrainEasyService, UserError
from ui.auth import audit_log
from ui.text import md

log = logging.getLogger("traineasy.ui")
SLOW_CALLS = {"upload_dataset": 660.0, "predict": 660.0, "check_data": 120.0}   # data tasks run in a worker
DEFAULT_TIMEOUT = 20.0


class Unavailable(Exception):
    """Temporal cannot be reached."""


class SyncService:
    """The async service facade, callable from Streamlit's script threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, service: TrainEasyService) -> None:
        self._loop, self._service = loop, service

    def __getattr__(self, name: str):
        attr = getattr(self._service, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            future = asyncio.run_coroutine_threadsafe(attr(*args, **kwargs), self._loop)
            return future.result(SLOW_CALLS.get(name, DEFAULT_TIMEOUT))
        return call


@st.cache_resource(show_spinner=False)
def _backend() -> SyncService:
    settings = load_settings()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="temporal-client-loop", daemon=True).start()
    try:
        client = asyncio.run_coroutine_threadsafe(connect(settings), loop).result(10)
    except Exception as exc:  # not cached: the next rerun tries again
        loop.call_soon_threadsafe(loop.stop)
        raise Unavailable(f"Temporal is not reachable at {settings.temporal_target}: {exc}") from None
    return SyncService(loop, TrainEasyService(client, settings))


def service() -> SyncService:
    return _backend()


@st.cache_resource(show_spinner=False)
def accounts_service() -> AccountService:
    """Accounts need no Temporal: they keep working while the engine is down."""
    return AccountService(load_settings())


def audit(action: str, obj: str = "", *, user: User, outcome: str = "ok", detail: str = "") -> None:
    """Record what a user did from a page (the service records what goes through it)."""
    audit_log().record(user.name, action, obj, outcome, user.address, detail)


def fetch_owned(what: str, load: Callable[[], Any]) -> Any | None:
    """`load()`, or None after saying why: not found (another user's, or a wrong link) or a failure."""
    with guard(f"Reading the {what}"):
        try:
            return load()
        except NotFound:
            st.error(f"{what.capitalize()} not found. It may belong to another user, or the link is wrong.")
    return None


@contextmanager
def guard(action: str = "That") -> Iterator[None]:
    """Turn failures into a message on the page; never a traceback."""
    try:
        yield
    except UserError as err:
        st.error(md(str(err)))
    except Unavailable as err:
        st.error(f"{err}. Is the stack running (`make run`)?")
    except TimeoutError:
        st.error(f"{action} took too long to answer. Temporal or the workers may be overloaded; try again shortly.")
    except Exception as err:
        log.exception("unexpected error")
        st.error(f"{action} failed unexpectedly ({type(err).__name__}). The details are in the app log.")
