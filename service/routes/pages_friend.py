"""The friend's pages: the invitation with its consent, and sharing photos (no log-in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from service import enroll, invites, uploads
from service.invites import CONSENT_VERSION
from service.routes.deps import InvitedFriend, ServicesDep, SessionDep
from service.routes.pages import CsrfChecked, redirect, render
from service.tables import Owner

router = APIRouter(include_in_schema=False)


@router.get("/invite/{token}", response_class=HTMLResponse)
def invitation(
    token: str, request: Request, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Response:
    owner = session.get(Owner, friend.owner_id)
    assert owner is not None
    return render(
        request,
        services,
        "invite.html",
        token=token,
        friend=friend,
        owner=owner,
        references=enroll.references(session, owner),
        consent_version=CONSENT_VERSION,
        invite_valid_days=services.settings.invite_valid_days,
    )


@router.get("/invite/{token}/faces/{reference_id}")
def owner_face(
    token: str, reference_id: int, friend: InvitedFriend, session: SessionDep
) -> Response:
    """The owner's face crops: the friend sees exactly whose face is searched for."""
    owner = session.get(Owner, friend.owner_id)
    assert owner is not None
    ref = enroll.reference_of(session, owner, reference_id)
    if ref is None:
        return Response(status_code=404)
    return Response(ref.thumbnail, media_type="image/jpeg")


@router.post("/invite/{token}/consent", dependencies=[CsrfChecked])
def consent(
    token: str, friend: InvitedFriend, session: SessionDep, accept: Annotated[str, Form()]
) -> Response:
    files = invites.consent(session, friend, accept == "yes")
    session.commit()
    invites.remove_files(files)
    return redirect(f"/invite/{token}/share" if friend.status == "accepted" else f"/invite/{token}")


@router.get("/invite/{token}/share", response_class=HTMLResponse)
def share(
    token: str, request: Request, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Response:
    if friend.status != "accepted":
        return redirect(f"/invite/{token}")
    owner = session.get(Owner, friend.owner_id)
    return render(
        request,
        services,
        "share.html",
        token=token,
        friend=friend,
        owner=owner,
        scans=uploads.scans_of(session, friend),
        max_upload_mb=services.settings.max_upload_bytes // 2**20,
    )
