"""The app's own facade on a chaos stack, built as ui/runtime.py `_backend` builds it for a Streamlit process: a
lazy client with the app's retries and an engine watch on one loop thread, and a SyncService over them. The
temporal-restart scenario times its reads during the outage (a read must fail fast once the watch says down)."""

from __future__ import annotations

import asyncio
import threading

from core.config import Settings
from orchestration.client import APP_RETRIES, connect
from orchestration.engine_watch import EngineWatch
from orchestration.health import PROBE_TIMEOUT, probe_temporal
from orchestration.service import TrainEasyService
from ui.sync_service import SyncService


def app_facade(settings: Settings, probe_every: float = 2.0) -> SyncService:
    """What one app process holds; `close()` it when done (it stops the watch and the loop)."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="chaos-app-loop", daemon=True).start()
    client = asyncio.run_coroutine_threadsafe(connect(settings, lazy=True, retries=APP_RETRIES), loop).result(10)
    watch = EngineWatch(lambda: probe_temporal(client), every=probe_every)
    watch.start(loop)
    watch.wait_first(PROBE_TIMEOUT + 1)
    return SyncService(loop, TrainEasyService(client, settings), watch)
