"""The admin's pages: friends' reports and frozen owners, to clear or delete. For the instance's
admin only; anyone else logged in gets 404, as for another owner's data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from service import accounts, admin
from service.routes.deps import RowId, ServicesDep, SessionDep
from service.routes.pages import (
    CsrfChecked,
    PageOwner,
    flash_of,
    notice_of,
    redirect,
    render,
    take_flash,
)
from service.tables import Owner

router = APIRouter(include_in_schema=False)


def page_admin(owner: PageOwner) -> Owner:
    if not owner.is_admin:
        raise HTTPException(404, "Not Found")
    return owner


PageAdmin = Annotated[Owner, Depends(page_admin)]


def _owner(session: SessionDep, owner_id: int) -> Owner:
    owner = admin.owner_of(session, owner_id)
    if owner is None:
        raise HTTPException(404, "no such owner")
    return owner


@router.get("/admin", response_class=HTMLResponse)
def admin_page(
    request: Request, me: PageAdmin, session: SessionDep, services: ServicesDep
) -> Response:
    response = render(
        request,
        services,
        "admin.html",
        owner=me,
        reports=admin.reports(session),
        frozen=admin.frozen_owners(session),
        error=flash_of(request),
        notice=notice_of(request),
    )
    take_flash(request, response)
    return response


@router.post("/admin/owners/{owner_id}/clear", dependencies=[CsrfChecked])
def clear(owner_id: RowId, me: PageAdmin, session: SessionDep) -> Response:
    owner = _owner(session, owner_id)
    admin.clear(session, me, owner)
    return redirect("/admin", notice=f"{owner.name} ({owner.email}) may invite again.")


@router.post("/admin/owners/{owner_id}/delete", dependencies=[CsrfChecked])
def delete(owner_id: RowId, me: PageAdmin, session: SessionDep, services: ServicesDep) -> Response:
    owner = _owner(session, owner_id)
    gone = f"{owner.name} ({owner.email})"
    try:
        admin.delete(session, me, owner, services.settings.outbox_dir)
    except accounts.NotAllowed as e:
        return redirect("/admin", error=str(e))
    return redirect("/admin", notice=f"The account of {gone} and everything in it are deleted.")
