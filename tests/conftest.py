"""Session-wide fixtures: one real Temporal dev server (the pip-installed binary) for all workflow tests."""
from __future__ import annotations

from datetime import timedelta

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from orchestration.contracts import SEARCH_ATTRIBUTES
from tests.helpers import BIN


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_env():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_startup_timeout=timedelta(seconds=60),
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(temporal_env):
    return temporal_env.client
