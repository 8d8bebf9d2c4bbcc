"""Sealing data kept at rest: AES-GCM under keys derived from the server key.

The server key (`LEADFLOW_SECRET_KEY`, or locally a key generated once and kept in the
data dir) is never used directly: each use derives its own key from it (HKDF with a
distinct label), so a key of one use never opens or signs for another. Lead capture
seals form signing secrets and signs hosted-page tokens (`leadflow.capture.signing`);
idempotency seals the stored answers (`leadflow.idempotency`).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from leadflow.config import Settings

log = logging.getLogger("leadflow.sealing")

_LOCAL_KEY_FILE = "secret_key"
_NONCE_BYTES = 12


class Unsealable(ValueError):
    """The sealed bytes do not open: another key (a changed server key) or another context."""


class Sealer:
    """AES-GCM with a key derived from the server key for one use (`label`). The sealed
    form is the 12-byte nonce followed by the ciphertext; `context` is associated data,
    so bytes sealed for one record do not open for another."""

    def __init__(self, server_key: bytes, label: bytes) -> None:
        self._aead = AESGCM(derive_key(server_key, label))

    def seal(self, data: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, context)

    def unseal(self, sealed: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context)
        except InvalidTag as exc:
            raise Unsealable("the sealed data does not open with this key and context") from exc


def derive_key(server_key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(server_key)


def server_key(settings: Settings) -> bytes:
    """LEADFLOW_SECRET_KEY, or locally a key generated once and kept in the data dir."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if settings.require_database_url:
        # The container image: each replica would generate its own key and none could
        # open the others' sealed secrets, nor would any survive a restart.
        raise RuntimeError("LEADFLOW_SECRET_KEY is not set; it is required here (32+ characters)")
    return _local_key(settings.data_dir / _LOCAL_KEY_FILE)


def app_server_key(app_state: Any) -> bytes:
    """The app's server key, read once per process from its settings."""
    key: bytes | None = getattr(app_state, "server_key", None)
    if key is None:
        key = server_key(app_state.settings)
        app_state.server_key = key
    return key


def _local_key(path: Path) -> bytes:
    if path.exists():
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    try:
        # link() never replaces: when several workers start at once, the first key
        # written wins and the others read it, always complete.
        os.link(draft, path)
    except FileExistsError:
        return _read_key(path)
    finally:
        draft.unlink()
    log.warning("generated a local server key in %s (set LEADFLOW_SECRET_KEY in production)", path)
    return key.encode()


def _read_key(path: Path) -> bytes:
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key (32+ characters expected)")
    return key.encode()
