"""The friend's JSON API: the invitation token in the path is their only key."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service import invites, reports, resumable, uploads
from service.ingest.profiles import UnreadableLink
from service.notify import export_reminders
from service.routes.deps import ConsentingFriend, InvitedFriend, RowId, ServicesDep, SessionDep
from service.routes.openapi import ARCHIVE_FORM, BODY, errors
from service.routes.schemas import (
    AskerPublic,
    ConsentPublic,
    ConsentRequest,
    ExportFromUploads,
    ProfileRequest,
    Queued,
    ReportRequest,
    ScanPublic,
    ScanQueued,
)
from service.routes.streaming import ReceivedFile, receive_archive
from service.states import SourceKind
from service.tables import Friend, Owner

router = APIRouter(prefix="/api/v1/invites/{token}")
Model = TypeVar("Model", bound=BaseModel)


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
    """The friend does not know the owner, or the face is not theirs: that owner's invitation
    stops working, what the friend shared with them is deleted, they are frozen and the
    instance's admin is told. `owner`: whom, among the members of a family circle asking on
    this page (422 for one who does not ask); without it, the owner of the link."""
    try:
        reported = reports.reported(session, friend, body.owner)
    except invites.InviteError as e:
        raise HTTPException(422, str(e)) from None
    services.queue_mail(session, reports.report(session, services.settings, reported, body.reason))
    if reported.id != friend.id:
        owner = session.get_one(Owner, reported.owner_id)
        return Queued(
            detail=f"thank you: {owner.name}'s invitation no longer works, everything you shared "
            f"with {owner.name} is deleted, and the person who runs this service will look into "
            "it; the others' invitations on this page still work"
        )
    return Queued(
        detail="thank you: this link no longer works, everything you shared is deleted, and "
        "the person who runs this service will look into it"
    )


@router.post(
    "/exports",
    status_code=202,
    responses=errors(400, 403, 404, 409, 413, 415, 422),
    openapi_extra=ARCHIVE_FORM,
)
async def upload_export(
    request: Request, friend: SharingFriend, session: SessionDep, services: ServicesDep
) -> ScanQueued:
    """The export as a form (`file`, repeated for the parts of a split export), or the keys of
    finished resumable uploads (`{"uploads": [...]}`, see `/uploads`): one source, one scan."""
    if request.headers.get("content-type", "").startswith("application/json"):
        parts = _finished_uploads(await _json_body(request, ExportFromUploads), friend, session)
    else:
        parts = await receive_archive(
            request, services.settings.quarantine_dir, services.settings.max_upload_bytes
        )
    scan = services.queue_export(session, friend, parts)
    assert scan.id is not None
    return ScanQueued(scan_id=scan.id)


async def _json_body(request: Request, model: type[Model]) -> Model:
    """A JSON body read by the route itself (it also takes a form): invalid is 422, as ever."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_input=False)) from None


def _finished_uploads(
    body: ExportFromUploads, friend: Friend, session: SessionDep
) -> list[ReceivedFile]:
    try:
        taken = resumable.take(session, uploads.shared_by(session, friend), body.uploads)
    except resumable.UploadRefused as e:
        raise HTTPException(e.status, str(e)) from None
    return [ReceivedFile(Path(u.path), u.filename, u.length) for u in taken]


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


class ExportReminder(BaseModel):
    """When the friend's link comes back to them by mail, with their download ready."""

    remind_at: datetime


@router.post("/export-reminder", status_code=202, responses=errors(403, 404, 422))
def export_reminder(friend: SharingFriend, session: SessionDep) -> ExportReminder:
    """The friend asked the platform for their download: their link is mailed to them in 2
    days, and once more 2 days later unless they share something first. Asking again while
    that runs changes nothing (a double click sends one series)."""
    return ExportReminder(remind_at=export_reminders.ask(session, friend))
