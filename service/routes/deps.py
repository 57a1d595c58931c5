"""Request dependencies: the unit of work, the current owner, the friend behind a token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlmodel import Session

from service.accounts import owner_for_token
from service.config import Settings
from service.faces.engine import FaceEngine
from service.invites import friend_for_token
from service.jobs import Jobs
from service.secrets_box import SecretBox
from service.tables import Friend, Owner

SESSION_COOKIE = "session"
CSRF_COOKIE = "csrf"


@dataclass
class Services:
    """What the app built at start-up, handed to every request."""

    settings: Settings
    db: Engine
    jobs: Jobs
    box: SecretBox
    templates: Jinja2Templates
    _engine: FaceEngine | None = None

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
    with Session(services.db, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_owner(request: Request, session: SessionDep) -> Owner:
    """The owner of a bearer token; for reads, a page session cookie works too (thumbnails)."""
    token = _bearer(request)
    owner = owner_for_token(session, token, "api") if token else None
    cookie = request.cookies.get(SESSION_COOKIE)
    if owner is None and token is None and cookie and request.method in ("GET", "HEAD"):
        owner = owner_for_token(session, cookie, "session")
    if owner is None:
        raise HTTPException(401, "not logged in", headers={"WWW-Authenticate": "Bearer"})
    return owner


CurrentOwner = Annotated[Owner, Depends(current_owner)]


def invited_friend(token: str, session: SessionDep) -> Friend:
    friend = friend_for_token(session, token)
    if friend is None:
        raise HTTPException(404, "this invitation link is unknown or has expired")
    return friend


InvitedFriend = Annotated[Friend, Depends(invited_friend)]


def consenting_friend(friend: InvitedFriend) -> Friend:
    if friend.status != "accepted":
        raise HTTPException(403, "please accept the invitation first")
    return friend


ConsentingFriend = Annotated[Friend, Depends(consenting_friend)]
