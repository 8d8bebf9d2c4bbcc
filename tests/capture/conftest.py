"""Lead-capture tests: a fixed server key and limits high enough not to get in the way."""

from __future__ import annotations

import pytest

from leadflow.capture.signing import Keyring
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


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(SERVER_KEY.encode())
