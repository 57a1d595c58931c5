"""Headers on every answer: a content security policy with no inline script, no sniffing, no
framing, no referrer off the site, and nothing stored that a token or a log-in opened."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Paths whose URL carries a friend's or an invitee's key: never kept by a browser or a proxy.
TOKEN_PATHS = (
    "/invite/",
    "/checklist/",
    "/unsubscribe/",
    "/confirm/",
    "/signup",
    "/circles/join/",
    "/login",  # `?next=` may hold a link to join a circle
    "/api/v1/invites/",
)
ALWAYS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # Not no-referrer: with it, browsers send `Origin: null` with every form post, and the
    # pages' origin check (routes/pages.py) could no longer tell our forms from a foreign one.
    "referrer-policy": "same-origin",
}


class SecurityHeaders:
    """Pure ASGI. `no-store` replaces any caching on token paths; on answers to a logged-in
    request it is the default (an answer that chose its own, a thumbnail, keeps it)."""

    def __init__(self, app: ASGIApp, session_cookie: str) -> None:
        self.app = app
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        token_path = path.startswith(TOKEN_PATHS)
        private = not path.startswith("/static/") and self._logged_in(Headers(scope=scope))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers[name] = value
                if token_path or (private and "cache-control" not in headers):
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _logged_in(self, headers: Headers) -> bool:
        if "authorization" in headers:
            return True
        return self.session_cookie in cookie_parser(headers.get("cookie", ""))
