"""The web application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Photo removal</title></head>
<body><main><h1>Photo removal</h1>
<p>The service is running. Sign-up and invitations arrive with the web service.</p>
<p>Scan a folder or export from the command line: <code>photo-removal scan --help</code>.</p>
</main></body></html>"""


def create_app() -> FastAPI:
    app = FastAPI(title="photo-removal", version="0.1.0")

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return PLACEHOLDER

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
