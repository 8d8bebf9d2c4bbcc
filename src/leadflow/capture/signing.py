"""Secrets of lead capture: signing secrets sealed at rest, Standard Webhooks signatures,
and the signed tokens of hosted form pages.

A form's signing secret has to be usable to verify HMACs, so unlike API tokens it cannot
be kept as a one-way hash: it is sealed (`leadflow.sealing`, AES-GCM under a key derived
from the server key) with the form id as associated data so that a sealed secret copied
onto another form row does not open. The page-token key is derived separately from the
same server key (HKDF with distinct labels), so one never stands in for the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from leadflow.errors import DomainError
from leadflow.sealing import Sealer, Unsealable, app_server_key, derive_key

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
# Standard Webhooks: a timestamp further than this from now, either way, is refused.
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60
MAX_WEBHOOK_ID_LENGTH = 255
# Enough for a sender rotating through a few secrets; bounds the work per request.
MAX_SIGNATURES = 10
_SEALED_VERSION = "v1"


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
        self._seal = Sealer(server_key, b"leadflow form signing secret seal v1")
        self._page = derive_key(server_key, b"leadflow hosted form page token v1")

    def seal(self, secret: str, form_id: uuid.UUID) -> str:
        sealed = self._seal.seal(secret.encode(), form_id.bytes)
        return f"{_SEALED_VERSION}:" + base64.urlsafe_b64encode(sealed).decode()

    def unseal(self, sealed: str, form_id: uuid.UUID) -> str:
        version, _, payload = sealed.partition(":")
        if version != _SEALED_VERSION:
            raise ValueError(f"unknown sealed-secret version {version!r}")
        raw = base64.urlsafe_b64decode(payload)
        try:
            return self._seal.unseal(raw, form_id.bytes).decode()
        except Unsealable as exc:
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


def keyring_for(app_state: Any) -> Keyring:
    """The app's keyring, derived once per process from the settings' server key."""
    keyring: Keyring | None = getattr(app_state, "capture_keyring", None)
    if keyring is None:
        keyring = Keyring(app_server_key(app_state))
        app_state.capture_keyring = keyring
    return keyring
