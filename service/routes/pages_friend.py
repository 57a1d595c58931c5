"""The friend's pages: the invitation with its consent, sharing photos, and reporting the
invitation (no log-in: the token in the path is the friend's key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from service import enroll, invites, reports, uploads
from service.export_guides import guides
from service.ingest.profiles import UnreadableLink
from service.invites import CONSENT_VERSION
from service.notify import export_reminders
from service.routes.deps import InvitedFriend, RowId, ServicesDep, SessionDep
from service.routes.pages import (
    CsrfChecked,
    SameOrigin,
    Text,
    flash_of,
    redirect,
    render,
    take_flash,
)
from service.routes.streaming import receive_archive
from service.states import FriendStatus, SourceKind
from service.tables import Friend, Owner, ReferenceFace

router = APIRouter(include_in_schema=False)


@router.get("/invite/{token}", response_class=HTMLResponse)
def invitation(
    token: str, request: Request, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Response:
    owner = session.get(Owner, friend.owner_id)
    assert owner is not None
    askers = invites.askers(session, friend)
    response = render(
        request,
        services,
        "invite.html",
        token=token,
        friend=friend,
        owner=owner,
        askers=askers,
        references={a.owner.id: enroll.references(session, a.owner) for a in askers},
        consent_version=CONSENT_VERSION,
        invite_valid_days=services.settings.invite_valid_days,
        paused=owner.frozen_at is not None,
        error=flash_of(request),
    )
    take_flash(request, response)
    return response


@router.get("/invite/{token}/faces/{reference_id}")
def owner_face(
    token: str, reference_id: RowId, friend: InvitedFriend, session: SessionDep
) -> Response:
    """The face crops of whoever asks on this page (the owner of the link, and the members of
    their family circle who ask the same friend): the friend sees exactly whose face is looked
    for, and no one else's."""
    ref = session.get(ReferenceFace, reference_id)
    if ref is None or invites.sibling_for(session, friend, ref.owner_id) is None:
        return Response(status_code=404)
    return Response(ref.thumbnail, media_type="image/jpeg")


@router.post("/invite/{token}/consent", dependencies=[CsrfChecked])
def consent(
    token: str,
    friend: InvitedFriend,
    session: SessionDep,
    services: ServicesDep,
    accept: Text,
    show_whole_photos: Text = "",  # the consent form's checkbox: "yes" when ticked
    owners: Annotated[list[int] | None, Form()] = None,  # a circle's members, when several ask
    merged: Text = "",  # "yes" on a page where several ask: then `owners` says whom
) -> Response:
    try:
        answered = invites.consent_each(
            session,
            services.settings,
            friend,
            owners or [] if merged == "yes" else None,
            accept == "yes",
            show_whole_photos == "yes",
        )
    except invites.SharingPaused as e:
        raise HTTPException(403, str(e)) from None
    except invites.InviteError as e:
        return redirect(f"/invite/{token}", error=str(e))
    for mail in answered.mails:
        services.queue_mail(session, mail)
    if any(f.status == FriendStatus.accepted for f in answered.friends):
        return redirect(f"/invite/{token}/share")
    return redirect(f"/invite/{token}")


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
        # Whose faces are looked for: in a family circle, every member the friend helps.
        helped=[
            a.owner.name
            for a in invites.askers(session, friend)
            if a.friend.status == FriendStatus.accepted
        ],
        scans=uploads.scans_of(session, friend),
        max_upload_mb=services.settings.max_upload_bytes // 2**20,
        guides=guides(services.settings.max_upload_bytes),
        export_reminder=export_reminders.next_reminder(session, friend),
        link_idle_days=services.settings.link_idle_days,
        paused=owner is not None and owner.frozen_at is not None,
        error=flash_of(request),
    )
    take_flash(request, response)
    return response


@router.post("/invite/{token}/share", dependencies=[SameOrigin])
async def share_upload(
    token: str, request: Request, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Response:
    """The upload form without JavaScript: the same as the JSON API, then back to the page.

    No CSRF token: the credential is the token in the path, not a cookie, so another site
    cannot borrow it; and reading a form field first would mean buffering the whole upload.
    The origin is checked all the same: it is in the headers.
    """
    if friend.status != FriendStatus.accepted:
        return redirect(f"/invite/{token}")
    refuse_while_paused(session, friend)
    try:
        parts = await receive_archive(
            request, services.settings.quarantine_dir, services.settings.max_upload_bytes
        )
    except HTTPException as e:
        return redirect(f"/invite/{token}/share", error=str(e.detail))
    services.queue_export(session, friend, parts)
    return redirect(f"/invite/{token}/share#scans")


@router.post("/invite/{token}/profiles", dependencies=[CsrfChecked])
def share_profile(
    token: str,
    friend: InvitedFriend,
    session: SessionDep,
    services: ServicesDep,
    url: Text,
) -> Response:
    """A public profile link from the share page's form."""
    if friend.status != FriendStatus.accepted:
        return redirect(f"/invite/{token}")
    refuse_while_paused(session, friend)
    try:
        link = services.readable_profile(url)
    except UnreadableLink as e:
        return redirect(f"/invite/{token}/share#profile", error=str(e))
    services.queue_scan(session, friend, kind=SourceKind.profile, label=link)
    return redirect(f"/invite/{token}/share#scans")


@router.post("/invite/{token}/export-reminder", dependencies=[CsrfChecked])
def export_reminder(token: str, friend: InvitedFriend, session: SessionDep) -> Response:
    """The share page's "I've asked for it" button: the link is mailed again in 2 days."""
    if friend.status != FriendStatus.accepted:
        return redirect(f"/invite/{token}")
    refuse_while_paused(session, friend)
    export_reminders.ask(session, friend)
    return redirect(f"/invite/{token}/share#waiting")


def refuse_while_paused(session: SessionDep, friend: Friend) -> None:
    """403, saying why, while the friend's owner is frozen by a report."""
    try:
        invites.check_sharing(session, friend)
    except invites.SharingPaused as e:
        raise HTTPException(403, str(e)) from None


def _reported(session: SessionDep, friend: Friend, owner_id: int | None) -> Friend:
    """The invitation reported: that of `owner_id` among those asking on the page (404 for
    anyone else), or the link's own."""
    try:
        return reports.reported(session, friend, owner_id)
    except invites.InviteError:
        raise HTTPException(404, "no such invitation") from None


@router.get("/invite/{token}/report", response_class=HTMLResponse)
def report_page(
    token: str,
    request: Request,
    friend: InvitedFriend,
    session: SessionDep,
    services: ServicesDep,
    owner: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """The report form, linked from the invitation page (one for each member asking there)
    and from every mail to the friend."""
    reported = _reported(session, friend, owner)
    return render(
        request,
        services,
        "report.html",
        token=token,
        friend=reported,
        owner=session.get(Owner, reported.owner_id),
        own_link=reported.id == friend.id,
        done=False,
    )


REASONS = {
    "unknown": "I don't know this person",
    "not_their_face": "This is not their face",
    "other": "Something else",
}


@router.post("/invite/{token}/report", dependencies=[CsrfChecked])
def report(
    token: str,
    request: Request,
    friend: InvitedFriend,
    session: SessionDep,
    services: ServicesDep,
    reason: Annotated[str, Form(max_length=40)] = "other",
    details: Annotated[str, Form(max_length=900)] = "",
    owner: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
) -> Response:
    reported = _reported(session, friend, owner)
    said = REASONS.get(reason, REASONS["other"]) + (
        f": {details.strip()}" if details.strip() else ""
    )
    services.queue_mail(session, reports.report(session, services.settings, reported, said))
    return render(
        request,
        services,
        "report.html",
        status_code=202,
        token=token,
        friend=reported,
        owner=session.get(Owner, reported.owner_id),
        own_link=reported.id == friend.id,
        done=True,
    )
