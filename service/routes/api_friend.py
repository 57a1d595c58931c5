"""The friend's JSON API: the invitation token in the path is their only key."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from service import invites, uploads
from service.ingest.profiles import UnreadableLink
from service.routes.deps import ConsentingFriend, InvitedFriend, ServicesDep, SessionDep
from service.routes.schemas import ConsentRequest, ProfileRequest, ScanPublic, ScanQueued
from service.routes.streaming import receive_archive
from service.states import SourceKind

router = APIRouter(prefix="/api/v1/invites/{token}")


@router.post("/consent")
def consent(body: ConsentRequest, friend: InvitedFriend, session: SessionDep) -> dict[str, str]:
    invites.consent(session, friend, body.accept)
    return {"status": friend.status}


@router.post("/exports", status_code=202)
async def upload_export(
    request: Request, friend: ConsentingFriend, session: SessionDep, services: ServicesDep
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


@router.post("/profiles", status_code=202)
def add_profile(
    body: ProfileRequest, friend: ConsentingFriend, session: SessionDep, services: ServicesDep
) -> ScanQueued:
    """Checks now that the link can be read (422 with the reason if not); the job reads it all."""
    try:
        link = services.readable_profile(body.url)
    except UnreadableLink as e:
        raise HTTPException(422, str(e)) from None
    scan = services.queue_scan(session, friend, kind=SourceKind.profile, label=link)
    assert scan.id is not None
    return ScanQueued(scan_id=scan.id)


@router.get("/scans/{scan_id}")
def scan_status(scan_id: int, friend: InvitedFriend, session: SessionDep) -> ScanPublic:
    scan = uploads.scan_of(session, friend, scan_id)
    if scan is None:
        raise HTTPException(404, "no such scan")
    return ScanPublic.of(scan)


@router.get("/scans")
def scans(friend: InvitedFriend, session: SessionDep) -> list[ScanPublic]:
    return [ScanPublic.of(scan) for scan, _ in uploads.scans_of(session, friend)]
