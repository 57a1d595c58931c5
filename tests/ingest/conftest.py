"""Local web servers on 127.0.0.1 standing in for the platforms a profile link is read from."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.ingest.builders import as_json


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Answer]


class Site:
    """A web server with a table of routes (path -> answer or handler); anything else is 404.
    It records every request, so a test can tell what was asked and when."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Request] = []
        site = self

        class _Handler(BaseHTTPRequestHandler):
            wbufsize = 1 << 16  # headers and body in one write: no delayed-ACK stalls

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = Request(parts.path, dict(parse_qsl(parts.query)), dict(self.headers))
                site.requests.append(request)
                route = site.routes.get(parts.path)
                answer = route(request) if route else Answer(404, b"not found")
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        serve = partial(self._server.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def route(self, path: str, answer: Answer | Handler) -> None:
        self.routes[path] = answer if callable(answer) else (lambda _request: answer)

    def json(self, path: str, value: Any, **headers: str) -> None:
        self.route(
            path, Answer(200, as_json(value), {"Content-Type": "application/json", **headers})
        )

    def file(self, path: str, body: bytes, content_type: str = "image/jpeg") -> None:
        self.route(path, Answer(200, body, {"Content-Type": content_type}))

    def asked(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()
