"""Session-wide fixtures: one real Temporal dev server (the pip-installed binary) for all workflow tests.

Every payload is encrypted as in production. The payload key is set in the environment here, before
anything starts, so the test clients, in-process workers, worker subprocesses and launched stacks share it.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from core.config import load_settings
from orchestration.client import data_converter
from orchestration.codec import ENV_VAR, new_key_text
from orchestration.contracts import SEARCH_ATTRIBUTES
from orchestration.dev_server import dev_server_args
from tests.helpers import BIN

os.environ[ENV_VAR] = new_key_text()  # a fresh key per test session; never a committed one


@pytest.fixture(autouse=True)
def _keep_main_module():
    """AppTest runs page scripts as `__main__` and leaves them there; a process forked afterwards for a
    child-process fit would re-run that script. Put pytest's own main module back after every test."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_env():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_startup_timeout=timedelta(seconds=60),
        dev_server_extra_args=dev_server_args(database_file=False),  # as make run's server (orchestration/dev_server.py)
        data_converter=data_converter(load_settings()),
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(temporal_env):
    return temporal_env.client
