"""The friend's JSON API: the invitation token in the path is their only key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from service import invites, reports, uploads
from service.ingest.profiles import UnreadableLink
from service.routes.deps import ConsentingFriend, InvitedFriend, RowId, ServicesDep, SessionDep
from service.routes.openapi import ARCHIVE_FORM, BODY, errors
from service.routes.schemas import (
    AskerPublic,
    ConsentPublic,
    ConsentRequest,
    ProfileRequest,
    Queued,
    ReportRequest,
    ScanPublic,
    ScanQueued,
)
from service.routes.streaming import receive_archive
from service.states import SourceKind
from service.tables import Friend

router = APIRouter(prefix="/api/v1/invites/{token}")


def sharing_friend(friend: ConsentingFriend, session: SessionDep) -> Friend:
    """A friend who accepted, and whose owner no report has frozen (else 403, saying so)."""
    try:
        invites.check_sharing(session, friend)
    except invites.SharingPaused as e:
        raise HTTPException(403, str(e)) from None
    return friend


SharingFriend = Annotated[Friend, Depends(sharing_friend)]


@router.post("/consent", responses=errors(403, 404, *BODY))
def consent(
    body: ConsentRequest, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> ConsentPublic:
    """`owners`: the members of a family circle who ask on this page and are answered (422 for
    one who does not ask); without it, the owner of the link."""
    try:
        answered = invites.consent_each(
            session, services.settings, friend, body.owners, body.accept, body.show_whole_photos
        )
    except invites.SharingPaused as e:
        raise HTTPException(403, str(e)) from None
    except invites.InviteError as e:
        raise HTTPException(422, str(e)) from None
    for mail in answered.mails:
        services.queue_mail(session, mail)
    askers = [
        AskerPublic(id=a.owner.id or 0, name=a.owner.name, status=a.friend.status)
        for a in invites.askers(session, friend)
    ]
    return ConsentPublic(status=friend.status, owners=askers)


@router.post("/report", status_code=202, responses=errors(404, *BODY))
def report(
    body: ReportRequest, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Queued:
    """The friend does not know the owner, or the face is not theirs: the link stops working,
    what the friend shared is deleted, the owner is frozen and the instance's admin is told."""
    services.queue_mail(session, reports.report(session, services.settings, friend, body.reason))
    return Queued(
        detail="thank you: this link no longer works, everything you shared is deleted, and "
        "the person who runs this service will look into it"
    )


@router.post(
    "/exports",
    status_code=202,
    responses=errors(403, 404, 413, 415, 422),
    openapi_extra=ARCHIVE_FORM,
)
async def upload_export(
    request: Request, friend: SharingFriend, session: SessionDep, services: ServicesDep
) -> ScanQueued:
    received = await receive_archive(
        request, services.settings.quarantine_dir, services.settings.max_upload_bytes
    )
    scan = services.queue_scan(
        session,
        friend,
        kind=SourceKind.export,
        label=received.filename,
        upload=received.path,
        size=received.size,
    )
    assert scan.id is not None
    return ScanQueued(scan_id=scan.id)


@router.post("/profiles", status_code=202, responses=errors(403, 404, *BODY))
def add_profile(
    body: ProfileRequest, friend: SharingFriend, session: SessionDep, services: ServicesDep
) -> ScanQueued:
    """Checks now that the link can be read (422 with the reason if not); the job reads it all."""
    try:
        link = services.readable_profile(body.url)
    except UnreadableLink as e:
        raise HTTPException(422, str(e)) from None
    scan = services.queue_scan(session, friend, kind=SourceKind.profile, label=link)
    assert scan.id is not None
    return ScanQueued(scan_id=scan.id)


@router.get("/scans/{scan_id}", responses=errors(403, 404, 422))
def scan_status(scan_id: RowId, friend: ConsentingFriend, session: SessionDep) -> ScanPublic:
    scan = uploads.scan_of(session, friend, scan_id)
    if scan is None:
        raise HTTPException(404, "no such scan")
    return ScanPublic.of(scan)


@router.get("/scans", responses=errors(403, 404, 422))
def scans(friend: ConsentingFriend, session: SessionDep) -> list[ScanPublic]:
    return [ScanPublic.of(scan) for scan, _ in uploads.scans_of(session, friend)]
