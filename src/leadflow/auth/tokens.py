"""API tokens: 256 random bits, shown once, kept only as a SHA-256 digest.

A fast hash is right here (unlike for passwords): the token has full entropy, so a
leaked digest cannot be reversed by guessing, and look-up stays one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "lf_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
