"""What keeps the dashboard safe in a browser: a strict Content-Security-Policy and friends on
every response, and the cross-site check every write passes (CSRF protection).

The check is the one browsers make possible without tokens or sessions (as Go's
``http.CrossOriginProtection`` does): a browser names where a request comes from in
``Sec-Fetch-Site`` (every current browser) or at least ``Origin`` (every browser on a POST).
A write is accepted only from the dashboard's own origin; a request carrying neither header
does not come from a browser, so no other site can have made a user's browser send it.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Nothing but this origin's own files; no inline script, no inline style, no eval, no frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response of the dashboard."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in _HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cross_site_refusal(request: Request, trusted_origins: Collection[str]) -> str | None:
    """Why this write must be refused as coming from another site, or None to accept it."""
    origin = request.headers.get("origin")
    if origin is not None and origin in trusted_origins:
        return None
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site in ("same-origin", "none"):  # "none": the user's own action (a bookmark)
            return None
        return f"the browser says it came from another site (Sec-Fetch-Site: {site})"
    if origin is None:
        return None  # neither header: not sent by a browser (curl, a script of yours)
    host = request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc != host:
        return f"it came from {origin}, not from this dashboard's origin ({host})"
    return None
