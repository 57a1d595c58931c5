"""Request dependencies: the unit of work, the current owner, the friend behind a token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParameter
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlmodel import Session

from service import uploads
from service.accounts import owner_for_token
from service.config import Settings
from service.db import remove_files, unit_of_work
from service.faces.engine import FaceEngine
from service.ingest.profiles import read_profile
from service.invites import DeadLink, look_up
from service.jobs import Jobs, enqueue_after_commit, fetch_options
from service.routes.streaming import ReceivedFile
from service.secrets_box import SecretBox
from service.states import FriendStatus, SourceKind, TokenKind
from service.tables import Friend, OutgoingMail, Owner, Scan

SESSION_COOKIE = "session"
CSRF_COOKIE = "csrf"
# An id in a path: one an id column can hold, else 422. The columns are INTEGER, 32-bit on
# PostgreSQL (SQLite's are 64-bit); a larger id failed inside the driver, a 500.
RowId = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]


@dataclass
class Services:
    """What the app built at start-up, handed to every request."""

    settings: Settings
    db: Engine
    jobs: Jobs
    box: SecretBox
    templates: Jinja2Templates
    _engine: FaceEngine | None = None

    def queue_scan(
        self,
        session: Session,
        friend: Friend,
        *,
        kind: SourceKind,
        label: str,
        upload: Path | None = None,
        size: int = 0,
    ) -> Scan:
        """Record the source and its scan; the job is sent once the request commits. An upload
        that cannot be recorded is deleted at once (it must never outlive its scan)."""
        try:
            scan = uploads.add_source(
                session, friend, kind=kind, label=label, upload=upload, size=size
            )
        except BaseException:
            if upload is not None:
                remove_files([str(upload)])
            raise
        enqueue_after_commit(session, self.jobs.scan, scan.id)
        return scan

    def queue_export(self, session: Session, friend: Friend, parts: list[ReceivedFile]) -> Scan:
        """One export, in one part or several (a split download), as one source and scan."""
        try:
            upload = uploads.gather(
                self.settings.quarantine_dir, [(p.path, p.filename) for p in parts]
            )
        except BaseException:
            remove_files([str(p.path) for p in parts])
            raise
        return self.queue_scan(
            session,
            friend,
            kind=SourceKind.export,
            label=uploads.label_of([p.filename for p in parts]),
            upload=upload,
            size=sum(p.size for p in parts),
        )

    def queue_mail(self, session: Session, mail: OutgoingMail | None) -> None:
        """Send the mail once the request commits (None: it was composed before)."""
        if mail is not None:
            enqueue_after_commit(session, self.jobs.send_mail, mail.id)

    def readable_profile(self, url: str) -> str:
        """The profile link as it will be read, after checking now that it can be (the scan job
        reads it all); raises UnreadableLink saying why not."""
        return read_profile(url.strip(), fetch_options(self.settings)).url

    def face_engine(self) -> FaceEngine:
        # Loaded on first enrollment, not at start-up: most requests never need it.
        if self._engine is None:
            from service.faces.matching import Thresholds
            from service.faces.modelfiles import verified_model_files

            self._engine = FaceEngine(
                verified_model_files(), min_score=Thresholds.load().detector_min_score
            )
        return self._engine


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """One transaction per request, committed when the endpoint returns without error."""
    with unit_of_work(services.db) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# Reads `Authorization: Bearer <token>` (None without one) and declares it in /openapi.json.
BEARER = HTTPBearer(auto_error=False, description="the access_token of POST /api/v1/auth/token")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def current_owner(request: Request, session: SessionDep, bearer: Bearer) -> Owner:
    """The owner of a bearer token; for reads, a page session cookie works too (thumbnails)."""
    token = bearer.credentials if bearer else None
    owner = owner_for_token(session, token, TokenKind.api) if token else None
    cookie = request.cookies.get(SESSION_COOKIE)
    if owner is None and token is None and cookie and request.method in ("GET", "HEAD"):
        owner = owner_for_token(session, cookie, TokenKind.session)
    if owner is None:
        raise HTTPException(401, "not logged in", headers={"WWW-Authenticate": "Bearer"})
    return owner


CurrentOwner = Annotated[Owner, Depends(current_owner)]


class DeadLinkError(HTTPException):
    """A 404 for a friend's link that opens nothing any more; the page says why, kindly."""

    def __init__(self, reason: str) -> None:
        super().__init__(404, reason)


def invited_friend(token: str, session: SessionDep, services: ServicesDep) -> Friend:
    """The friend behind a live link: revoked, replaced, reported and expired links are 404."""
    try:
        return look_up(session, services.settings, token)
    except DeadLink as e:
        raise DeadLinkError(e.reason) from None


InvitedFriend = Annotated[Friend, Depends(invited_friend)]


def consenting_friend(friend: InvitedFriend) -> Friend:
    """A friend who accepted: one who has not, or declined or withdrew, keeps only the
    invitation page (to accept after all), its face crops and the report form."""
    if friend.status != FriendStatus.accepted:
        raise HTTPException(403, "please accept the invitation first")
    return friend


ConsentingFriend = Annotated[Friend, Depends(consenting_friend)]
