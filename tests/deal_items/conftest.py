from __future__ import annotations

from pathlib import Path

import pytest

from leadflow.config import Settings
from tests.factories import OPERATOR_TOKEN

MAX_UPLOAD = 256 * 1024


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    return tmp_path / "files"


@pytest.fixture
def settings(files_dir: Path) -> Settings:
    """Files go to a directory of the test; uploads are limited to 256 KiB."""
    return Settings(
        database_url=None,
        admin_token=OPERATOR_TOKEN,
        log_json=False,
        files_dir=files_dir,
        max_upload_bytes=MAX_UPLOAD,
    )
