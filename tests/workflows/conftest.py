"""Per-test settings (own task queue and storage root) and the service under test."""

from __future__ import annotations

import pytest

from orchestration.service import TrainEasyService
from tests.helpers import test_settings


@pytest.fixture
def settings(tmp_path):
    return test_settings(tmp_path)


@pytest.fixture
def service(client, settings):
    return TrainEasyService(client, settings)
