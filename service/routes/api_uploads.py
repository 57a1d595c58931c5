"""Resumable export uploads, by the tus protocol: the friend's page sends big exports in pieces
with tus-js-client, and any tus client can (see service/resumable.py). A finished upload, or
the parts of a split export together, becomes a scan by `POST /api/v1/invites/{token}/exports`
with `{"uploads": [...]}`. HEAD answers as GET does (routes/methods.py), without the body."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from service import resumable, uploads
from service.routes.api_friend import SharingFriend
from service.routes.deps import ServicesDep, SessionDep
from service.routes.openapi import errors
from service.tables import ExportUpload, Friend

router = APIRouter(prefix="/api/v1/invites/{token}/uploads", tags=["resumable uploads"])

TUS = {"Tus-Resumable": resumable.VERSION}
_TUS_HEADERS = {
    name: {"description": sense, "schema": {"type": "string"}}
    for name, sense in {
        "Tus-Resumable": "the tus version of this server, 1.0.0",
        "Upload-Offset": "bytes received so far",
        "Upload-Length": "the file's size in bytes",
        "Upload-Expires": "when an idle upload is deleted (HTTP date)",
    }.items()
}
_LOCATION = {"Location": {"description": "the upload's URL", "schema": {"type": "string"}}}
_BYTES = {
    "requestBody": {
        "required": True,
        "content": {
            "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
        },
    }
}


def _with(status: int, headers: dict[str, Any], *failures: int) -> dict[int | str, dict[str, Any]]:
    """`responses=`: the success's headers, and these errors."""
    return {status: {"headers": headers}, **errors(*failures)}


def tus_friend(friend: SharingFriend, request: Request) -> Friend:
    """The friend sharing (a dead link is 404 first), whose request says which tus it speaks:
    every request but OPTIONS must, and another version than ours is 412.

    The tus headers are read, not declared as parameters: they are the protocol's, checked
    with its own statuses (412, 409), not the API's 422."""
    if request.headers.get("tus-resumable") != resumable.VERSION:
        raise HTTPException(
            412,
            "send Tus-Resumable: 1.0.0",
            headers={**TUS, "Tus-Version": resumable.VERSION},
        )
    return friend


TusFriend = Annotated[Friend, Depends(tus_friend)]


class UploadPublic(BaseModel):
    filename: str
    offset: int
    length: int
    finished: bool


def _headers(progress: resumable.Progress) -> dict[str, str]:
    return {
        **TUS,
        "Upload-Offset": str(progress.offset),
        "Upload-Length": str(progress.length),
        "Upload-Expires": progress.expires.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Cache-Control": "no-store",
    }


def _number(request: Request, header: str) -> int:
    value = request.headers.get(header, "")
    if not value.isascii() or not value.isdigit():
        raise resumable.UploadRefused(400, f"send {header} as a number of bytes")
    return int(value)


def _refused(e: resumable.UploadRefused) -> HTTPException:
    return HTTPException(e.status, str(e), headers=TUS)


def _upload(session: SessionDep, friend: Friend, key: str) -> ExportUpload:
    upload = resumable.find(session, uploads.shared_by(session, friend), key)
    if upload is None:
        raise HTTPException(404, "no such upload: it may have expired; please upload again")
    return upload


@router.options("", status_code=204, responses=errors(404, 422))
def capabilities(friend: SharingFriend, services: ServicesDep) -> Response:
    """What this tus server does: its version, extensions and the largest file it takes."""
    return Response(
        status_code=204,
        headers={
            **TUS,
            "Tus-Version": resumable.VERSION,
            "Tus-Extension": resumable.EXTENSIONS,
            "Tus-Max-Size": str(services.settings.max_upload_bytes),
        },
    )


@router.post(
    "",
    status_code=201,
    responses=_with(201, _LOCATION, 400, 403, 404, 409, 412, 413, 422),
)
def create(
    token: str,
    friend: TusFriend,
    session: SessionDep,
    services: ServicesDep,
    request: Request,
) -> Response:
    """Start an upload of `Upload-Length` bytes; `Upload-Metadata` may give its `filename`."""
    try:
        upload = resumable.create(
            session,
            services.settings.quarantine_dir,
            services.settings.max_upload_bytes,
            friend,
            _number(request, "Upload-Length"),
            resumable.parse_metadata(request.headers.get("upload-metadata")),
        )
    except resumable.UploadRefused as e:
        raise _refused(e) from None
    headers = _headers(resumable.progress(upload))
    del headers["Upload-Offset"], headers["Upload-Length"]
    return Response(
        status_code=201,
        headers={**headers, "Location": f"/api/v1/invites/{token}/uploads/{upload.key}"},
    )


@router.get(
    "/{key}",
    responses=_with(200, _TUS_HEADERS, 403, 404, 412, 422),
)
def status(key: str, friend: TusFriend, session: SessionDep, response: Response) -> UploadPublic:
    """How much of the upload arrived (HEAD: the same in `Upload-Offset`, for tus clients)."""
    upload = _upload(session, friend, key)
    progress = resumable.progress(upload)
    response.headers.update(_headers(progress))
    return UploadPublic(
        filename=upload.filename,
        offset=progress.offset,
        length=progress.length,
        finished=progress.finished,
    )


@router.patch(
    "/{key}",
    status_code=204,
    openapi_extra=_BYTES,
    responses=_with(204, _TUS_HEADERS, 400, 403, 404, 409, 412, 413, 415, 422),
)
async def append(
    key: str,
    request: Request,
    friend: TusFriend,
    session: SessionDep,
) -> Response:
    """The next bytes, from `Upload-Offset` (409 if that is not where the upload stands)."""
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise HTTPException(415, "send the bytes as application/offset+octet-stream", headers=TUS)
    upload = _upload(session, friend, key)
    try:
        at = _number(request, "Upload-Offset")
        progress = await resumable.append(upload, at, request.stream())
    except ClientDisconnect:  # what arrived is kept; the client asks where to go on
        progress = resumable.progress(upload)
    except resumable.UploadRefused as e:
        if e.status == 415:  # not an export: nothing of it is kept
            resumable.discard(session, [upload])
            session.commit()
        raise _refused(e) from None
    session.add(upload)
    return Response(status_code=204, headers=_headers(progress))


@router.delete("/{key}", status_code=204, responses=errors(403, 404, 412, 422))
def cancel(key: str, friend: TusFriend, session: SessionDep) -> Response:
    """Stop the upload and delete what arrived of it."""
    resumable.discard(session, [_upload(session, friend, key)])
    return Response(status_code=204, headers=TUS)
