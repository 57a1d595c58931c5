"""Family circles in the JSON API: create one, invite owners by mail, join, leave or remove.
A circle is visible to its members only: to anyone else it answers 404, as if it did not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from service import accounts, circles
from service.routes.api_owner import refused, too_many
from service.routes.deps import CurrentOwner, RowId, ServicesDep, SessionDep
from service.routes.openapi import BODY, errors
from service.routes.schemas import CircleCreate, CircleInvite, CirclePublic, JoinRequest, Queued
from service.security import RateLimited
from service.tables import Circle

router = APIRouter(prefix="/api/v1/circles")


def members_circle(circle_id: RowId, owner: CurrentOwner, session: SessionDep) -> Circle:
    circle = circles.membership(session, owner, circle_id)
    if circle is None:
        raise HTTPException(404, "no such circle")
    return circle


MembersCircle = Annotated[Circle, Depends(members_circle)]


def _public(session: SessionDep, circle: Circle) -> CirclePublic:
    return CirclePublic.of(circle, circles.members(session, circle))


@router.post("", status_code=201, responses=errors(401, 403, 409, *BODY))
def create(body: CircleCreate, owner: CurrentOwner, session: SessionDep) -> CirclePublic:
    """A new circle, its creator its first member and keeper; 409 when in a circle already."""
    try:
        circle = circles.create(session, owner, body.name)
    except accounts.NotAllowed as e:
        raise refused(e) from None
    except accounts.AccountError as e:
        raise HTTPException(422, str(e)) from None
    except circles.CircleError as e:
        raise HTTPException(409, str(e)) from None
    return _public(session, circle)


@router.get("/{circle_id:int}", responses=errors(401, 404, 422))
def show(circle: MembersCircle, session: SessionDep) -> CirclePublic:
    return _public(session, circle)


@router.post(
    "/{circle_id:int}/members", status_code=202, responses=errors(401, 403, 404, 409, 429, *BODY)
)
def invite(
    body: CircleInvite,
    circle: MembersCircle,
    owner: CurrentOwner,
    session: SessionDep,
    services: ServicesDep,
) -> Queued:
    """Mail an owner a link to join (`{BASE_URL}/circles/join/{token}`)."""
    try:
        circles.count_invitation(services.db, services.settings, owner)
        mail = circles.invite(session, services.settings, owner, circle, body.email)
    except accounts.NotAllowed as e:
        raise refused(e) from None
    except RateLimited as e:
        raise too_many(e) from None
    except circles.CircleError as e:
        raise HTTPException(409, str(e)) from None
    services.queue_mail(session, mail)
    return Queued(detail=f"an invitation to join “{circle.name}” is on its way to {body.email}")


@router.post("/join", responses=errors(401, 403, 404, 409, *BODY))
def join(body: JoinRequest, owner: CurrentOwner, session: SessionDep) -> CirclePublic:
    """Join with the token of the mailed link, logged in with the address it was sent to; 403
    before that address is confirmed, 409 while in another circle."""
    row = circles.invitation(session, owner, body.token)
    if row is None:
        raise HTTPException(404, "this link to join a circle is unknown, used or has expired")
    try:
        circle = circles.join(session, owner, row)
    except accounts.NotAllowed as e:
        raise refused(e) from None
    except circles.CircleError as e:
        raise HTTPException(409, str(e)) from None
    return _public(session, circle)


@router.delete(
    "/{circle_id:int}/members/{member_id}", status_code=204, responses=errors(401, 403, 404, 422)
)
def remove(
    member_id: RowId, circle: MembersCircle, owner: CurrentOwner, session: SessionDep
) -> Response:
    """Leave (your own id) or, as the keeper, remove a member."""
    try:
        circles.remove(session, owner, circle, member_id)
    except LookupError:
        raise HTTPException(404, "no such member of this circle") from None
    except accounts.NotAllowed as e:
        raise refused(e) from None
    return Response(status_code=204)
