"""Secrets of lead capture: signing secrets sealed at rest, Standard Webhooks signatures,
and the signed tokens of hosted form pages.

A form's signing secret has to be usable to verify HMACs, so unlike API tokens it cannot
be kept as a one-way hash: it is sealed with AES-GCM under a key derived from the server
key (`LEADFLOW_SECRET_KEY`), with the form id as associated data so that a sealed secret
copied onto another form row does not open. The page-token key is derived separately
from the same server key (HKDF with distinct labels), so one never stands in for the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from leadflow.config import Settings
from leadflow.errors import DomainError

log = logging.getLogger("leadflow.capture")

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
# Standard Webhooks: a timestamp further than this from now, either way, is refused.
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60
MAX_WEBHOOK_ID_LENGTH = 255
# Enough for a sender rotating through a few secrets; bounds the work per request.
MAX_SIGNATURES = 10
_SEALED_VERSION = "v1"
_LOCAL_KEY_FILE = "secret_key"


class SignatureInvalid(DomainError):
    status = 401
    slug = "invalid-signature"
    title = "Missing or invalid webhook signature"


def new_signing_secret() -> str:
    """`whsec_` + base64 of 32 random bytes, as the Standard Webhooks specification says."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one secret: `v1,<base64 HMAC-SHA256>`."""
    return "v1," + _signature(secret_key_bytes(secret), webhook_id, str(timestamp), body).decode()


def _signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def verify_webhook(
    secrets_: Iterable[str], headers: Mapping[str, str | None], body: bytes, now: float
) -> str:
    """Check the Standard Webhooks headers over the raw body; return the webhook id.

    Raises `SignatureInvalid` (401) for missing or malformed headers, a timestamp more
    than five minutes off, or no `v1` signature matching any of the given secrets.
    """
    webhook_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    if not webhook_id or not timestamp or not signature:
        raise SignatureInvalid(
            "Send the webhook-id, webhook-timestamp and webhook-signature headers."
        )
    if len(webhook_id) > MAX_WEBHOOK_ID_LENGTH or not webhook_id.isprintable():
        raise SignatureInvalid(
            f"webhook-id must be 1 to {MAX_WEBHOOK_ID_LENGTH} printable characters."
        )
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise SignatureInvalid("webhook-timestamp must be the Unix time in seconds.")
    if abs(now - int(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS:
        raise SignatureInvalid(
            "webhook-timestamp is more than 5 minutes away from the server's time."
        )
    expected = [_signature(secret_key_bytes(s), webhook_id, timestamp, body) for s in secrets_]
    matched = False
    for part in signature.split(" ")[:MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version != "v1":
            continue  # other schemes (v1a: asymmetric) are not ours
        given = value.encode("latin-1", errors="replace")
        for candidate in expected:
            matched |= hmac.compare_digest(candidate, given)
    if not matched:
        raise SignatureInvalid("No webhook-signature matches this form's signing secret.")
    return webhook_id


@dataclass(frozen=True, slots=True)
class PageToken:
    issued_at: int
    nonce: str


class Keyring:
    """Keys derived from the server key: one seals form secrets, one signs page tokens."""

    def __init__(self, server_key: bytes) -> None:
        self._seal = AESGCM(_derive(server_key, b"leadflow form signing secret seal v1"))
        self._page = _derive(server_key, b"leadflow hosted form page token v1")
        self._stored = AESGCM(_derive(server_key, b"leadflow stored response seal v1"))

    def seal_bytes(self, data: bytes, context: bytes) -> bytes:
        """AES-GCM for data kept at rest (stored idempotent responses carry API tokens)."""
        nonce = os.urandom(12)
        return nonce + self._stored.encrypt(nonce, data, context)

    def unseal_bytes(self, sealed: bytes, context: bytes) -> bytes:
        return self._stored.decrypt(sealed[:12], sealed[12:], context)

    def seal(self, secret: str, form_id: uuid.UUID) -> str:
        nonce = os.urandom(12)
        sealed = self._seal.encrypt(nonce, secret.encode(), form_id.bytes)
        return f"{_SEALED_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str, form_id: uuid.UUID) -> str:
        version, _, payload = sealed.partition(":")
        if version != _SEALED_VERSION:
            raise ValueError(f"unknown sealed-secret version {version!r}")
        raw = base64.urlsafe_b64decode(payload)
        try:
            return self._seal.decrypt(raw[:12], raw[12:], form_id.bytes).decode()
        except InvalidTag as exc:
            raise ValueError(
                "the form's signing secret does not open with this server key "
                "(was LEADFLOW_SECRET_KEY changed?)"
            ) from exc

    def page_token(self, form_id: uuid.UUID, issued_at: int) -> str:
        """`<unix time>.<nonce>.<hmac>`: issued with the form page, bound to the form."""
        nonce = secrets.token_urlsafe(12)
        return f"{issued_at}.{nonce}.{self._page_mac(form_id, issued_at, nonce)}"

    def check_page_token(self, form_id: uuid.UUID, token: str) -> PageToken | None:
        """The token's issue time and nonce if we issued it for this form, else None."""
        issued, _, rest = token.partition(".")
        nonce, _, mac = rest.partition(".")
        if not (issued.isascii() and issued.isdigit()) or len(issued) > 12 or not nonce:
            return None
        expected = self._page_mac(form_id, int(issued), nonce)
        if not hmac.compare_digest(expected.encode(), mac.encode("latin-1", errors="replace")):
            return None
        return PageToken(issued_at=int(issued), nonce=nonce)

    def _page_mac(self, form_id: uuid.UUID, issued_at: int, nonce: str) -> str:
        message = f"{form_id}.{issued_at}.{nonce}".encode()
        digest = hmac.new(self._page, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _derive(server_key: bytes, label: bytes) -> bytes:
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


def keyring_for(app_state: Any) -> Keyring:
    """The app's keyring, derived once per process from the settings' server key."""
    keyring: Keyring | None = getattr(app_state, "capture_keyring", None)
    if keyring is None:
        keyring = Keyring(server_key(app_state.settings))
        app_state.capture_keyring = keyring
    return keyring
