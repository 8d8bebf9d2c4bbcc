"""Security headers on every response, set in one place.

Outermost of the app's middleware, so that everything gets them: JSON answers,
problem+json errors (404, 405, 413, 500), the hosted form pages and the offline docs.
A header the route already set (e.g. `Cache-Control` of a file download) is kept.

Content-Security-Policy by what the response is:
- JSON (everything but the pages below): nothing may load, nothing may frame it.
- The hosted form pages `/f/...`: only their own inline `<style>`; the form posts back
  to us; no script at all.
- The docs `/docs`: Swagger UI's script and style from `/docs-assets`, its one inline
  script allowed by its SHA-256 hash (computed from the page as served, so a change of
  FastAPI's template or of the root path cannot silently break or widen it), the
  OpenAPI document fetched from us, and the `data:` images of its stylesheet.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_POLICY = "default-src 'none'; frame-ancestors 'none'"
FORM_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' {scripts}; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
FORM_PAGES_PREFIX = "/f/"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S)

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def script_hashes(html: bytes) -> str:
    """The CSP source list allowing exactly the inline scripts of `html`."""
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()}'"
        for m in _INLINE_SCRIPT.finditer(html)
    )


class SecurityHeaders:
    def __init__(
        self, app: ASGIApp, *, docs_path: str, api_prefix: str, hsts_max_age: int = 0
    ) -> None:
        self.app = app
        self.docs_path = docs_path
        self.api_prefix = api_prefix
        self.always = list(_ALWAYS)
        if hsts_max_age > 0:
            self.always.append((b"strict-transport-security", b"max-age=%d" % hsts_max_age))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == self.docs_path or path.startswith(self.docs_path + "/"):
            await self.app(scope, receive, _DocsPage(self._headers(scope), send))
            return
        policy = FORM_PAGE_POLICY if path.startswith(FORM_PAGES_PREFIX) else JSON_POLICY
        headers = self._headers(scope, policy)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _merged(message.get("headers", []), headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, scope: Scope, policy: str | None = None) -> list[tuple[bytes, bytes]]:
        headers = list(self.always)
        if policy is not None:
            headers.append((b"content-security-policy", policy.encode()))
        if scope["path"].startswith(self.api_prefix):
            # Answers of the API are one company's data (or about a token): never cached.
            headers.append((b"cache-control", b"no-store"))
        return headers


class _DocsPage:
    """Holds the docs page back until its body is known, to hash its inline scripts."""

    def __init__(self, headers: list[tuple[bytes, bytes]], send: Send) -> None:
        self.headers = headers
        self.send = send
        self.start: Message | None = None
        self.body: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.body.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.body)
        policy = DOCS_POLICY.format(scripts=script_hashes(body)).replace("  ", " ")
        start, self.start = self.start, None
        start["headers"] = _merged(
            start.get("headers", []),
            [*self.headers, (b"content-security-policy", policy.encode())],
        )
        await self.send(start)
        await self.send({"type": "http.response.body", "body": body})


def _merged(
    present: list[tuple[bytes, bytes]], defaults: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """`present` plus each default header the response does not set itself."""
    names = {bytes(name).lower() for name, _ in present}
    return [*present, *((name, value) for name, value in defaults if name not in names)]
