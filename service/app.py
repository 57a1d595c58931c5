"""The web application factory: settings in, a FastAPI app out (with the job consumer inside
when the queue is the embedded SQLite one)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Lifespan

from service.config import Settings
from service.db import make_engine, migrate
from service.jobs import Jobs
from service.posts import PLATFORMS
from service.routes import (
    api_admin,
    api_checklist,
    api_circles,
    api_friend,
    api_owner,
    api_uploads,
    pages_admin,
    pages_checklist,
    pages_circles,
    pages_friend,
    pages_owner,
    pages_review,
    pages_signup,
)
from service.routes.api_owner import MAX_REFERENCE_BYTES
from service.routes.deps import SESSION_COOKIE, DeadLinkError, Services
from service.routes.headers import SecurityHeaders
from service.routes.limits import BodyLimit
from service.routes.methods import HeadAsGet, allowed
from service.routes.pages import LoginRequired
from service.routes.pages_owner import REFERENCES_AT_ONCE
from service.secrets_box import SecretBox

WEB = Path(__file__).resolve().parents[1] / "web"
log = logging.getLogger(__name__)


def build_services(settings: Settings) -> Services:
    settings = settings.prepared()
    db = make_engine(settings.sqlalchemy_url)
    templates = Jinja2Templates(directory=WEB / "templates")
    templates.env.globals["platform_names"] = PLATFORMS
    return Services(
        settings=settings,
        db=db,
        jobs=Jobs(settings, db),
        box=SecretBox(settings.secret_key),
        templates=templates,
    )


def create_app(settings: Settings | None = None, *, consume: bool | None = None) -> FastAPI:
    """`consume`: run the job consumer in this process (default: when the queue is embedded)."""
    services = build_services(settings or Settings())
    migrate(services.db)
    run_consumer = services.jobs.embedded if consume is None else consume

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        consumer = services.jobs.consumer(services.settings.queue_workers) if run_consumer else None
        if consumer is not None:
            services.jobs.start()
            consumer.start()
        try:
            yield
        finally:
            if consumer is not None:
                services.jobs.stop(consumer)
            services.db.dispose()

    app = routed_app(lifespan)
    app.state.services = services
    slack = 2**20  # multipart framing; the routes check the file's own size exactly
    archive = services.settings.max_upload_bytes + slack
    photo = MAX_REFERENCE_BYTES + slack
    uploads = [
        (r"/api/v1/invites/[^/]+/exports", archive),
        (r"/invite/[^/]+/share", archive),
        (r"/api/v1/invites/[^/]+/uploads/[^/]+", services.settings.max_upload_bytes),  # tus
        (r"/api/v1/reference-photos", photo),
        (r"/reference-photos", REFERENCES_AT_ONCE * photo),  # the page's form takes several
    ]
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyLimit, uploads=uploads)
    app.add_middleware(SecurityHeaders, session_cookie=SESSION_COOKIE)  # outermost: on every answer
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """The API answers {"detail": ...}; a page answers with a page a person can read."""
        if exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
            exc.headers = {**exc.headers, "Allow": allowed(app.router.routes, request.scope)}
        if request.url.path.startswith("/api/") or not _wants_html(request):
            return await http_exception_handler(request, exc)
        return services.templates.TemplateResponse(
            request,
            "error.html",
            {
                "status": exc.status_code,
                "detail": exc.detail,
                "dead_link": isinstance(exc, DeadLinkError),
            },
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": without_input(exc.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "something went wrong on our side"}, status_code=500)

    return app


def routed_app(lifespan: Lifespan[FastAPI] | None = None) -> FastAPI:
    """The routes alone, without services: what /openapi.json is made from."""
    app = FastAPI(title="photo-removal", version="0.1.0", lifespan=lifespan)
    for module in (
        api_owner,
        api_friend,
        api_uploads,
        api_checklist,
        api_admin,
        api_circles,
        pages_owner,
        pages_signup,
        pages_review,
        pages_friend,
        pages_checklist,
        pages_circles,
        pages_admin,
    ):
        app.include_router(module.router)
    return app


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def without_input(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's 422 details without the input: echoing it mirrored a 300 MB body back, and a
    lone surrogate in it could not be encoded (a 500). Context values that repeat it go too."""
    quiet = []
    for error in errors:
        given = error.get("input")
        context = {
            key: value
            for key, value in (error.get("ctx") or {}).items()
            if isinstance(value, int | float)
            or (isinstance(value, str) and (not isinstance(given, str) or given not in value))
        }
        shown = {
            "type": error.get("type"),
            "loc": [_printable(part) for part in error.get("loc", ())],
            "msg": _printable(error.get("msg", "")),
        }
        quiet.append(
            shown | ({"ctx": {k: _printable(v) for k, v in context.items()}} if context else {})
        )
    return quiet


def _printable(value: Any) -> Any:
    """A string as UTF-8 can carry it (a lone surrogate becomes "?")."""
    return value.encode("utf-8", "replace").decode() if isinstance(value, str) else value
