"""The admin's JSON API: friends' reports and frozen owners. For the instance's admin only: to
anyone else these routes answer 404, as another owner's data does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from service import accounts, admin
from service.routes.deps import CurrentOwner, RowId, ServicesDep, SessionDep
from service.routes.openapi import errors
from service.routes.schemas import OwnerPublic, ReportPublic
from service.tables import Owner

router = APIRouter(prefix="/api/v1/admin")


def current_admin(owner: CurrentOwner) -> Owner:
    if not owner.is_admin:
        raise HTTPException(404, "Not Found")
    return owner


CurrentAdmin = Annotated[Owner, Depends(current_admin)]


def _owner(session: SessionDep, owner_id: int) -> Owner:
    owner = admin.owner_of(session, owner_id)
    if owner is None:
        raise HTTPException(404, "no such owner")
    return owner


@router.get("/reports", responses=errors(401, 404))
def reports(me: CurrentAdmin, session: SessionDep) -> list[ReportPublic]:
    """Open reports first, then the newest."""
    return [ReportPublic.of(report, owner) for report, owner in admin.reports(session)]


@router.get("/frozen-owners", responses=errors(401, 404))
def frozen_owners(me: CurrentAdmin, session: SessionDep) -> list[OwnerPublic]:
    return [OwnerPublic.of(owner) for owner in admin.frozen_owners(session)]


@router.post("/owners/{owner_id}/clear", responses=errors(401, 404, 422))
def clear(owner_id: RowId, me: CurrentAdmin, session: SessionDep) -> OwnerPublic:
    """Unfreeze the owner: they may invite again, and scans run for them again."""
    owner = _owner(session, owner_id)
    admin.clear(session, me, owner)
    return OwnerPublic.of(owner)


@router.delete("/owners/{owner_id}", status_code=204, responses=errors(401, 403, 404, 422))
def delete(
    owner_id: RowId, me: CurrentAdmin, session: SessionDep, services: ServicesDep
) -> Response:
    """Delete the owner and everything of theirs (their own account page does it for the admin)."""
    try:
        admin.delete(session, me, _owner(session, owner_id), services.settings.outbox_dir)
    except accounts.NotAllowed as e:
        raise HTTPException(403, str(e)) from None
    return Response(status_code=204)
