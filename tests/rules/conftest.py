"""Conversion-rule tests capture leads too: the capture tests' key and generous limits."""

from __future__ import annotations

import pytest

from leadflow.config import Settings
from tests.capture.helpers import SERVER_KEY
from tests.factories import OPERATOR_TOKEN


@pytest.fixture
def settings() -> Settings:
    return Settings(
        database_url=None,
        admin_token=OPERATOR_TOKEN,
        log_json=False,
        secret_key=SERVER_KEY,
        capture_rate_per_form="100000/minute",
        capture_rate_per_client="100000/minute",
    )
