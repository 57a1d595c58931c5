"""The family circle's pages: the owner's circle (create, invite, leave or remove), and the page
a mailed link opens to join one."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from service import accounts, circles
from service.routes.deps import RowId, ServicesDep, SessionDep
from service.routes.forms import SentBack
from service.routes.pages import (
    CsrfChecked,
    PageOwner,
    Text,
    flash_of,
    notice_of,
    optional_owner,
    redirect,
    render,
    take_flash,
)
from service.security import RateLimited
from service.tables import Circle, Owner

router = APIRouter(include_in_schema=False)


@router.get("/circle", response_class=HTMLResponse)
def circle_page(
    request: Request, owner: PageOwner, session: SessionDep, services: ServicesDep
) -> Response:
    response = _page(
        request, owner, session, services, error=flash_of(request), notice=notice_of(request)
    )
    take_flash(request, response)
    return response


def _page(
    request: Request,
    owner: Owner,
    session: SessionDep,
    services: ServicesDep,
    status_code: int = 200,
    form: SentBack | None = None,
    **messages: str | None,
) -> Response:
    """The circle's page; with `form`, its form sent back with what is wrong in it."""
    circle = circles.circle_of(session, owner)
    return render(
        request,
        services,
        "circle.html",
        status_code=status_code,
        form=form,
        owner=owner,
        circle=circle,
        members=circles.members(session, circle) if circle else [],
        **messages,
    )


def _sent_back(form: str, field: str, typed: str, error: Exception) -> tuple[int, SentBack]:
    """A refused form of the circle's page (each has one field): what is wrong with the name or
    the address under it, a permission or a limit above the form."""
    if isinstance(error, (accounts.AccountError, circles.CircleError)):
        return 422, SentBack(form, {field: typed}, {field: str(error)})
    status = 429 if isinstance(error, RateLimited) else 403
    return status, SentBack(form, {field: typed}, problem=str(error))


@router.post("/circle", dependencies=[CsrfChecked])
def create(
    request: Request, owner: PageOwner, session: SessionDep, services: ServicesDep, name: Text
) -> Response:
    try:
        circle = circles.create(session, owner, name)
    except (accounts.NotAllowed, accounts.AccountError, circles.CircleError) as e:
        status, sent = _sent_back("create", "name", name, e)
        return _page(request, owner, session, services, status, sent)
    return redirect("/circle", notice=f"“{circle.name}” is ready: invite your relatives to it.")


def _circle(session: SessionDep, owner: Owner, circle_id: int) -> Circle:
    circle = circles.membership(session, owner, circle_id)
    if circle is None:
        raise HTTPException(404, "no such circle")
    return circle


@router.post("/circles/{circle_id}/members", dependencies=[CsrfChecked])
def invite(
    request: Request,
    circle_id: RowId,
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
    email: Text,
) -> Response:
    circle = _circle(session, owner, circle_id)
    try:
        circles.count_invitation(services.db, services.settings, owner)
        mail = circles.invite(session, services.settings, owner, circle, email)
    except (accounts.NotAllowed, accounts.AccountError, circles.CircleError, RateLimited) as e:
        status, sent = _sent_back("member", "email", email, e)
        return _page(request, owner, session, services, status, sent)
    services.queue_mail(session, mail)
    return redirect("/circle", notice=f"An invitation to join is on its way to {email.strip()}.")


@router.post("/circles/{circle_id}/members/{member_id}/remove", dependencies=[CsrfChecked])
def remove(circle_id: RowId, member_id: RowId, owner: PageOwner, session: SessionDep) -> Response:
    circle = _circle(session, owner, circle_id)
    try:
        circles.remove(session, owner, circle, member_id)
    except LookupError:
        raise HTTPException(404, "no such member of this circle") from None
    except accounts.NotAllowed as e:
        return redirect("/circle", error=str(e))
    if member_id == owner.id:
        return redirect("/circle", notice=f"You left “{circle.name}”.")
    return redirect("/circle", notice="The member was removed from the circle.")


@router.get("/circles/join/{token}", response_class=HTMLResponse)
def join_page(token: str, request: Request, session: SessionDep, services: ServicesDep) -> Response:
    """Logged in with the invited address: who asks, who is in, and a Join button. Otherwise a
    way to log in that comes back here (the link opens nothing for another account)."""
    owner = optional_owner(request, session)
    if owner is None:
        return redirect(f"/login?next={quote(f'/circles/join/{token}')}")
    row = circles.invitation(session, owner, token)
    if row is None:
        raise HTTPException(
            404,
            "this link to join a circle is unknown, used or has expired, or it was sent to "
            f"another address than {owner.email}",
        )
    circle = session.get(Circle, row.circle_id)
    assert circle is not None
    response = render(
        request,
        services,
        "circle_join.html",
        owner=owner,
        token=token,
        circle=circle,
        inviter=session.get(Owner, row.inviter_id),
        members=circles.members(session, circle),
        current=circles.circle_of(session, owner),
        error=flash_of(request),
    )
    take_flash(request, response)
    return response


@router.post("/circles/join/{token}", dependencies=[CsrfChecked])
def join(token: str, owner: PageOwner, session: SessionDep) -> Response:
    row = circles.invitation(session, owner, token)
    if row is None:
        raise HTTPException(404, "this link to join a circle is unknown, used or has expired")
    try:
        circle = circles.join(session, owner, row)
    except (accounts.NotAllowed, circles.CircleError) as e:
        return redirect(f"/circles/join/{token}", error=str(e))
    return redirect("/circle", notice=f"You joined “{circle.name}”.")
