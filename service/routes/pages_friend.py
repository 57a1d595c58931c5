"""The friend's pages: the invitation with its consent, and sharing photos (no log-in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from service import enroll, invites, uploads
from service.ingest.profiles import UnreadableLink
from service.invites import CONSENT_VERSION
from service.routes.deps import InvitedFriend, ServicesDep, SessionDep
from service.routes.pages import CsrfChecked, flash_of, redirect, render, take_flash
from service.routes.streaming import receive_archive
from service.states import FriendStatus, SourceKind
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
    invites.consent(session, friend, accept == "yes")
    return redirect(
        f"/invite/{token}/share" if friend.status == FriendStatus.accepted else f"/invite/{token}"
    )


@router.get("/invite/{token}/share", response_class=HTMLResponse)
def share(
    token: str, request: Request, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Response:
    if friend.status != FriendStatus.accepted:
        return redirect(f"/invite/{token}")
    owner = session.get(Owner, friend.owner_id)
    response = render(
        request,
        services,
        "share.html",
        token=token,
        friend=friend,
        owner=owner,
        scans=uploads.scans_of(session, friend),
        max_upload_mb=services.settings.max_upload_bytes // 2**20,
        error=flash_of(request),
    )
    take_flash(request, response)
    return response


@router.post("/invite/{token}/share")
async def share_upload(
    token: str, request: Request, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Response:
    """The upload form without JavaScript: the same as the JSON API, then back to the page.

    No CSRF token: the credential is the token in the path, not a cookie, so another site
    cannot borrow it; and reading a form field first would mean buffering the whole upload.
    """
    if friend.status != FriendStatus.accepted:
        return redirect(f"/invite/{token}")
    try:
        received = await receive_archive(
            request, services.settings.quarantine_dir, services.settings.max_upload_bytes
        )
    except HTTPException as e:
        return redirect(f"/invite/{token}/share", error=str(e.detail))
    services.queue_scan(
        session,
        friend,
        kind=SourceKind.export,
        label=received.filename,
        upload=received.path,
        size=received.size,
    )
    return redirect(f"/invite/{token}/share#scans")


@router.post("/invite/{token}/profiles", dependencies=[CsrfChecked])
def share_profile(
    token: str,
    friend: InvitedFriend,
    session: SessionDep,
    services: ServicesDep,
    url: Annotated[str, Form()],
) -> Response:
    """A public profile link from the share page's form."""
    if friend.status != FriendStatus.accepted:
        return redirect(f"/invite/{token}")
    try:
        link = services.readable_profile(url)
    except UnreadableLink as e:
        return redirect(f"/invite/{token}/share#profile", error=str(e))
    services.queue_scan(session, friend, kind=SourceKind.profile, label=link)
    return redirect(f"/invite/{token}/share#scans")
