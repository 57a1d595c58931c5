"""What every page shares: rendering with a CSRF token, checking it, the logged-in owner."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.accounts import owner_for_token
from service.routes.deps import CSRF_COOKIE, SESSION_COOKIE, ServicesDep, SessionDep
from service.security import csrf_matches
from service.states import TokenKind
from service.tables import Owner


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the log-in page."""


def render(
    request: Request, services: ServicesDep, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
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


def check_csrf(request: Request, csrf_token: Annotated[str, Form()] = "") -> None:
    """Double-submit: the form's token must equal the cookie only our pages could have set."""
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), csrf_token):
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
