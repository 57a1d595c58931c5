"""What every page shares: rendering with a CSRF token, checking it, the logged-in owner."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AfterValidator

from service.accounts import owner_for_token
from service.routes.deps import CSRF_COOKIE, SESSION_COOKIE, ServicesDep, SessionDep
from service.routes.schemas import storable
from service.security import csrf_bound, csrf_matches, new_csrf_token
from service.states import TokenKind
from service.tables import Owner

# A form field: text a page may send (no NUL, which PostgreSQL cannot store), else 422.
Text = Annotated[str, Form(), AfterValidator(storable)]


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the log-in page."""


def render(
    request: Request, services: ServicesDep, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    token = csrf_token(request, services.settings.secret_key)
    response = services.templates.TemplateResponse(
        request, name, {"csrf_token": token, **context}, status_code=status_code
    )
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=services.settings.base_url.startswith("https"),
        )
    return response


def csrf_token(request: Request, key: str) -> str:
    """The CSRF cookie when it was made for this request's session, else a new one."""
    session = request.cookies.get(SESSION_COOKIE)
    current = request.cookies.get(CSRF_COOKIE)
    if current and csrf_bound(key, current, session):
        return current
    return new_csrf_token(key, session)


def check_same_origin(request: Request, services: ServicesDep) -> None:
    """A form posted from another site is refused by its Origin (or, lacking one, its Referer);
    a request with neither is left to the CSRF token (older browsers, mail clients, scripts)."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if sent is None:
        return
    ours = {_origin(services.settings.base_url)}
    host = request.headers.get("host")
    if host:
        ours |= {_origin(f"{scheme}://{host}") for scheme in ("http", "https")}
    if _origin(sent) not in ours - {None}:
        raise HTTPException(403, "this form was sent from another site, so it was not accepted")


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL, the default port filled in; None for "null" or junk."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname, port


SameOrigin = Depends(check_same_origin)


def check_csrf(
    request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> None:
    """Same origin, and double submit: the form's token equals the cookie only our pages set,
    and both were made for this log-in session."""
    check_same_origin(request, services)
    session = request.cookies.get(SESSION_COOKIE)
    key = services.settings.secret_key
    if not csrf_matches(key, request.cookies.get(CSRF_COOKIE), csrf_token, session):
        raise HTTPException(403, "the form expired; please reload the page and try again")


CsrfChecked = Depends(check_csrf)


def page_owner(request: Request, session: SessionDep) -> Owner:
    cookie = request.cookies.get(SESSION_COOKIE)
    owner = owner_for_token(session, cookie, TokenKind.session) if cookie else None
    if owner is None:
        raise LoginRequired
    return owner


PageOwner = Annotated[Owner, Depends(page_owner)]


def optional_owner(request: Request, session: SessionDep) -> Owner | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    return owner_for_token(session, cookie, TokenKind.session) if cookie else None


FLASH_COOKIE = "flash"


NOTICE_COOKIE = "notice"


def redirect(url: str, *, error: str | None = None, notice: str | None = None) -> RedirectResponse:
    """A 303 to `url`; `error` or `notice` is shown once on the next page (a cookie only we can
    set, so nobody can craft a link that puts words of theirs on the owner's page)."""
    response = RedirectResponse(url, status_code=303)
    for name, text in ((FLASH_COOKIE, error), (NOTICE_COOKIE, notice)):
        if text:
            response.set_cookie(
                name, quote(text[:300]), max_age=60, httponly=True, samesite="strict"
            )
    return response


def take_flash(request: Request, response: Response) -> None:
    for name in (FLASH_COOKIE, NOTICE_COOKIE):
        if name in request.cookies:
            response.delete_cookie(name)


def notice_of(request: Request) -> str | None:
    value = request.cookies.get(NOTICE_COOKIE)
    return unquote(value) if value else None


def flash_of(request: Request) -> str | None:
    value = request.cookies.get(FLASH_COOKIE)
    return unquote(value) if value else None
