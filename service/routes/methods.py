"""HTTP methods the routes do not spell out: HEAD is GET without the body, and a 405 names in
`Allow` every method its path takes (FastAPI's routes answer GET alone, not HEAD, and its 405
names only the methods of the first route with that path)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")


class HeadAsGet:
    """Pure ASGI: a HEAD request is answered as GET, headers and all, without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


def allowed(routes: list[BaseRoute], scope: Scope) -> str:
    """The `Allow` of a 405 at this request's path: each method some route fully matches."""
    methods = {
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    }
    return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
