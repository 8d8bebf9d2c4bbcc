"""The server key and what it seals, without the app."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from leadflow.capture.signing import Keyring, new_signing_secret
from leadflow.config import Settings
from leadflow.sealing import server_key


def test_without_a_configured_key_a_local_one_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(database_url=None, data_dir=tmp_path / "data", secret_key=None)

    first = server_key(settings)
    again = server_key(settings)

    assert first == again
    assert len(first) >= 32
    key_file = tmp_path / "data" / "secret_key"
    assert key_file.read_text().strip().encode() == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["secret_key"]


def test_the_container_refuses_to_start_without_a_configured_key(tmp_path: Path) -> None:
    """Where DATABASE_URL is required (the image), the settings themselves are refused:
    the process stops at start, not at the first capture."""
    with pytest.raises(ValueError, match="LEADFLOW_SECRET_KEY is required"):
        Settings(
            database_url="postgresql://db/leadflow",
            data_dir=tmp_path,
            require_database_url=True,
            secret_key=None,
        )


def test_leadflow_refuses_to_start_without_a_key_where_the_database_url_is_required(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "LEADFLOW_REQUIRE_DATABASE_URL": "1",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
        "LEADFLOW_DATA_DIR": str(tmp_path),
    }
    env.pop("LEADFLOW_SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "LEADFLOW_SECRET_KEY is required" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_configured_key_shorter_than_32_characters_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Settings(database_url=None, secret_key="too-short")


def test_a_sealed_secret_opens_only_for_its_form_and_under_its_key() -> None:
    keyring = Keyring(b"a" * 40)
    form_id = uuid.uuid4()
    secret = new_signing_secret()

    sealed = keyring.seal(secret, form_id)

    assert secret not in sealed
    assert keyring.unseal(sealed, form_id) == secret
    with pytest.raises(ValueError, match="does not open"):
        keyring.unseal(sealed, uuid.uuid4())
    with pytest.raises(ValueError, match="does not open"):
        Keyring(b"b" * 40).unseal(sealed, form_id)


def test_a_page_token_is_bound_to_its_form_and_cannot_be_altered() -> None:
    keyring = Keyring(b"a" * 40)
    form_id = uuid.uuid4()
    token = keyring.page_token(form_id, 1_700_000_000)

    checked = keyring.check_page_token(form_id, token)

    assert checked is not None and checked.issued_at == 1_700_000_000
    assert keyring.check_page_token(uuid.uuid4(), token) is None
    issued, rest = token.split(".", 1)
    assert keyring.check_page_token(form_id, f"{int(issued) - 60}.{rest}") is None
    assert Keyring(b"b" * 40).check_page_token(form_id, token) is None
