"""Request bodies are limited before anything parses them: 64 KB for JSON and forms, more only
for the few routes that take an upload (and stream and check it themselves, see streaming.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SMALL_BODY = 64 * 1024


class BodyTooLarge(HTTPException):
    """Raised from `receive`: FastAPI passes an HTTPException from reading the body on as it is,
    so the app's own handlers answer it (a page for a browser, `{"detail": ...}` for the API), and
    an upload route that turns errors into a message on its page does so for this one too."""

    def __init__(self, limit: int) -> None:
        size = f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit // 1024} KB"
        super().__init__(413, f"the request is larger than the limit of {size}")


class BodyLimit:
    """Pure ASGI: counts the body as it arrives and stops at the limit of the request's path. A
    declared Content-Length over the limit is refused before a byte of the body is read."""

    def __init__(
        self, app: ASGIApp, uploads: Iterable[tuple[str, int]], default: int = SMALL_BODY
    ) -> None:
        self.app = app
        self.uploads = [(re.compile(pattern), limit) for pattern, limit in uploads]
        self.default = default

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.uploads:
            if pattern.fullmatch(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        too_large = declared.strip().isdigit() and int(declared) > limit
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            if too_large:
                raise BodyTooLarge(limit)
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:  # sent in chunks with no length, or more than declared
                raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge as error:
            if started:  # nothing left to say: the connection closes
                raise
            await JSONResponse({"detail": error.detail}, status_code=413)(scope, receive, send)
