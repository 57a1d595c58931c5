"""The owner's JSON API: account (sign-up, confirming the address, inviting owners), reference
photos, friends, matches and their review."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, UploadFile

from service import accounts, enroll, invites, review, review_cards, signups
from service.routes.deps import CurrentOwner, RowId, ServicesDep, SessionDep
from service.routes.openapi import BODY, JPEG, errors
from service.routes.schemas import (
    BulkReviewRequest,
    ConfirmRequest,
    FriendCreate,
    FriendCreated,
    FriendPublic,
    MailsRequest,
    MatchPublic,
    OwnerCreate,
    OwnerInvitationCreate,
    OwnerPublic,
    Queued,
    ReferencePublic,
    ReviewRequest,
    TokenPublic,
    TokenRequest,
)
from service.security import RateLimited, count_attempt
from service.states import TokenKind
from service.tables import Friend, Owner

router = APIRouter(prefix="/api/v1")
MAX_REFERENCE_BYTES = 30 * 2**20


def limit(services: ServicesDep, key: str, count: int, per: timedelta) -> None:
    try:
        count_attempt(services.db, key, limit=count, per=per)
    except RateLimited as e:
        raise too_many(e) from None


def too_many(e: RateLimited) -> HTTPException:
    return HTTPException(429, str(e), headers={"Retry-After": str(e.retry_after)})


CONFIRMATION_MAILS_PER_HOUR = 5


def refused(e: accounts.NotAllowed) -> HTTPException:
    return HTTPException(403, str(e))


@router.post("/auth/register", status_code=201, responses=errors(403, 429, *BODY))
def register(
    body: OwnerCreate, request: Request, session: SessionDep, services: ServicesDep
) -> OwnerPublic:
    """403 when PHOTO_REMOVAL_SIGNUPS lets this person in no more (the detail says why); 429
    after `registrations_per_hour` tries from one address."""
    limit(
        services,
        signups.registration_key(request),
        services.settings.registrations_per_hour,
        timedelta(hours=1),
    )
    try:
        signed_up = signups.sign_up(
            session, services.settings, body.email, body.password, body.name, body.invitation
        )
    except accounts.AccountError as e:
        raise HTTPException(422, str(e)) from None
    except accounts.NotAllowed as e:
        raise refused(e) from None
    services.queue_mail(session, signed_up.mail)
    return OwnerPublic.of(signed_up.owner)


@router.post("/auth/confirm", responses=errors(404, *BODY))
def confirm(body: ConfirmRequest, session: SessionDep) -> OwnerPublic:
    """The token of the link mailed at sign-up (GET /confirm/{token} does the same)."""
    owner = signups.confirm(session, body.token)
    if owner is None:
        raise HTTPException(404, "this confirmation link is unknown, used or has expired")
    return OwnerPublic.of(owner)


@router.post("/auth/confirm/resend", status_code=202, responses=errors(401, 409, 429))
def resend_confirmation(owner: CurrentOwner, session: SessionDep, services: ServicesDep) -> Queued:
    """A new confirmation link (the one before stops working); 409 when already confirmed."""
    if owner.confirmed_at is not None:
        raise HTTPException(409, "your address is confirmed already")
    limit(services, f"confirm-mail:{owner.email}", CONFIRMATION_MAILS_PER_HOUR, timedelta(hours=1))
    services.queue_mail(session, signups.send_confirmation(session, services.settings, owner))
    return Queued(detail=f"a new confirmation link is on its way to {owner.email}")


@router.post("/owner-invitations", status_code=202, responses=errors(401, 403, 429, *BODY))
def invite_owner(
    body: OwnerInvitationCreate, owner: CurrentOwner, session: SessionDep, services: ServicesDep
) -> Queued:
    """Mail someone a link to open an account (the one way in under SIGNUPS=invite)."""
    settings = services.settings
    try:
        accounts.may_invite(owner)
        limit(
            services, f"owner-invite:{owner.id}", settings.invitations_per_hour, timedelta(hours=1)
        )
        mail = signups.invite_owner(session, settings, owner, body.email)
    except accounts.NotAllowed as e:
        raise refused(e) from None
    except accounts.AccountError as e:
        raise HTTPException(422, str(e)) from None
    services.queue_mail(session, mail)
    return Queued(detail=f"an invitation to open an account is on its way to {body.email}")


@router.post("/auth/token", responses=errors(401, 429, *BODY))
def token(
    body: TokenRequest, request: Request, session: SessionDep, services: ServicesDep
) -> TokenPublic:
    client = request.client.host if request.client else "?"
    limit(
        services,
        f"login:{body.email.strip().lower()}:{client}",
        services.settings.login_attempts_per_15min,
        timedelta(minutes=15),
    )
    owner = accounts.authenticate(session, body.email, body.password)
    if owner is None:
        raise HTTPException(401, "wrong e-mail address or password")
    return TokenPublic(access_token=accounts.issue_token(session, owner, TokenKind.api))


@router.get("/me", responses=errors(401))
def me(owner: CurrentOwner) -> OwnerPublic:
    return OwnerPublic.of(owner)


@router.put("/me/mails", responses=errors(401, *BODY))
def set_mails(body: MailsRequest, owner: CurrentOwner, session: SessionDep) -> OwnerPublic:
    """Choose the mails to get: `muted` lists the kinds not wanted (friend_answered,
    scan_done, list_answered, list_finished, removal_verified, digest); the ones about the
    account itself always come."""
    owner.muted = sorted(set(body.muted))
    session.add(owner)
    return OwnerPublic.of(owner)


@router.delete("/me", status_code=204, responses=errors(401))
def delete_me(owner: CurrentOwner, session: SessionDep, services: ServicesDep) -> Response:
    accounts.delete_owner(session, owner, services.settings.outbox_dir)
    return Response(status_code=204)


@router.post("/reference-photos", status_code=201, responses=errors(401, *BODY))
def add_reference(
    file: UploadFile, owner: CurrentOwner, session: SessionDep, services: ServicesDep
) -> ReferencePublic:
    data = file.file.read(MAX_REFERENCE_BYTES + 1)
    if len(data) > MAX_REFERENCE_BYTES:
        raise HTTPException(413, "the photo is larger than 30 MB")
    try:
        ref = enroll.enroll(session, owner, data, services.face_engine(), services.box)
    except enroll.EnrollError as e:
        raise HTTPException(422, str(e)) from None
    return ReferencePublic.of(ref)


@router.get("/reference-photos", responses=errors(401))
def list_references(owner: CurrentOwner, session: SessionDep) -> list[ReferencePublic]:
    return [ReferencePublic.of(r) for r in enroll.references(session, owner)]


@router.get(
    "/reference-photos/{reference_id}/thumbnail",
    response_class=Response,
    responses=JPEG | errors(401, 404, 422),
)
def reference_thumbnail(reference_id: RowId, owner: CurrentOwner, session: SessionDep) -> Response:
    ref = enroll.reference_of(session, owner, reference_id)
    if ref is None:
        raise HTTPException(404, "no such reference photo")
    return _jpeg(ref.thumbnail)


@router.delete("/reference-photos/{reference_id}", status_code=204, responses=errors(401, 404, 422))
def delete_reference(reference_id: RowId, owner: CurrentOwner, session: SessionDep) -> Response:
    ref = enroll.reference_of(session, owner, reference_id)
    if ref is None:
        raise HTTPException(404, "no such reference photo")
    enroll.remove(session, owner, ref)
    return Response(status_code=204)


@router.post("/friends", status_code=201, responses=errors(401, 403, 409, 429, *BODY))
def add_friend(
    body: FriendCreate, owner: CurrentOwner, session: SessionDep, services: ServicesDep
) -> FriendCreated:
    """403 until the owner's address is confirmed, and while a friend's report freezes them."""
    may_send_invitation(services, owner)
    try:
        friend, raw, mail = invites.invite(
            session, services.settings, services.box, owner, body.name, body.email
        )
    except invites.AlreadyInvited as e:
        raise HTTPException(409, str(e)) from None
    except invites.InviteError as e:
        raise HTTPException(422, str(e)) from None
    services.queue_mail(session, mail)
    return FriendCreated(
        **FriendPublic.of(friend).model_dump(),
        invite_url=invites.invite_url(services.settings, raw),
    )


def may_send_invitation(services: ServicesDep, owner: Owner) -> None:
    """403 while the owner may not invite (unconfirmed, or on hold after a report); 429 past
    `invitations_per_hour`, new invitations and ones sent again together."""
    try:
        accounts.may_invite(owner)
        invites.count_invitation(services.db, services.settings, owner)
    except accounts.NotAllowed as e:
        raise refused(e) from None
    except RateLimited as e:
        raise too_many(e) from None


def _friend(session: SessionDep, owner: CurrentOwner, friend_id: int) -> Friend:
    friend = invites.friend_of(session, owner, friend_id)
    if friend is None:
        raise HTTPException(404, "no such friend")
    return friend


@router.delete("/friends/{friend_id}", status_code=204, responses=errors(401, 404, 422))
def revoke_friend(
    friend_id: RowId, owner: CurrentOwner, session: SessionDep, services: ServicesDep
) -> Response:
    """Cancel the invitation: its link answers 404 at once, and what the friend shared goes."""
    invites.revoke(session, _friend(session, owner, friend_id), services.settings.outbox_dir)
    return Response(status_code=204)


@router.post(
    "/friends/{friend_id}/resend",
    status_code=202,
    responses=errors(401, 403, 404, 409, 422, 429),
)
def resend_invitation(
    friend_id: RowId, owner: CurrentOwner, session: SessionDep, services: ServicesDep
) -> Queued:
    """A new link, mailed; the old one stops working. 409 for a friend who declined, withdrew
    or reported (they are not asked again), 403 while the owner may not invite."""
    friend = _friend(session, owner, friend_id)
    may_send_invitation(services, owner)
    try:
        _, mail = invites.resend(session, services.settings, services.box, owner, friend)
    except invites.InviteError as e:
        raise HTTPException(409, str(e)) from None
    services.queue_mail(session, mail)
    if mail is None:  # a double click: the link mailed a moment ago is the live one
        return Queued(detail=f"a new link went to {friend.email} a moment ago; not sent again")
    return Queued(detail=f"a new link is on its way to {friend.email}; the old one no longer works")


@router.get("/friends", responses=errors(401))
def list_friends(owner: CurrentOwner, session: SessionDep) -> list[FriendPublic]:
    return [FriendPublic.of(f, n, o) for f, n, o, _ in invites.friends_of(session, owner)]


@router.get("/friends/{friend_id}/matches", responses=errors(401, 404, 422))
def friend_matches(friend_id: RowId, owner: CurrentOwner, session: SessionDep) -> list[MatchPublic]:
    friend = _friend(session, owner, friend_id)
    return [MatchPublic.of(m) for m in review.matches_of(session, owner, friend)]


@router.post("/friends/{friend_id}/matches/review", responses=errors(401, 404, *BODY))
def review_all(
    friend_id: RowId, body: BulkReviewRequest, owner: CurrentOwner, session: SessionDep
) -> list[MatchPublic]:
    """Decide every pending match of a friend at once (optionally one band only)."""
    friend = _friend(session, owner, friend_id)
    decided = review.review_all(session, owner, friend, body.decision, body.band)
    return [MatchPublic.of(m) for m in decided]


@router.delete("/friends/{friend_id}/matches/review", responses=errors(401, 404, 422))
def undo_review_all(
    friend_id: RowId, owner: CurrentOwner, session: SessionDep
) -> list[MatchPublic]:
    """Take back the last "all at once" decision for this friend: those matches wait again."""
    friend = _friend(session, owner, friend_id)
    return [MatchPublic.of(m) for m in review.undo_all(session, owner, friend)]


@router.post("/matches/{match_id}/review", responses=errors(401, 404, *BODY))
def review_match(
    match_id: RowId, body: ReviewRequest, owner: CurrentOwner, session: SessionDep
) -> MatchPublic:
    match = review.match_of(session, owner, match_id)
    if match is None:
        raise HTTPException(404, "no such match")
    return MatchPublic.of(review.review(session, owner, match, body.decision))


@router.delete("/matches/{match_id}/review", responses=errors(401, 404, 422))
def undo_match_review(match_id: RowId, owner: CurrentOwner, session: SessionDep) -> MatchPublic:
    """The match waits for review again."""
    match = review.match_of(session, owner, match_id)
    if match is None:
        raise HTTPException(404, "no such match")
    return MatchPublic.of(review.undo(session, owner, match))


@router.post("/match-groups/{group_id}/review", responses=errors(401, 404, *BODY))
def review_group(
    group_id: RowId, body: ReviewRequest, owner: CurrentOwner, session: SessionDep
) -> list[MatchPublic]:
    """Decide every pending match of a look-alike group, across all of this owner's friends."""
    group = review.group_of(session, owner, group_id)
    if group is None:
        raise HTTPException(404, "no such group")
    return [MatchPublic.of(m) for m in review.review_group(session, owner, group, body.decision)]


@router.delete("/match-groups/{group_id}/review", responses=errors(401, 404, 422))
def undo_group_review(
    group_id: RowId, owner: CurrentOwner, session: SessionDep
) -> list[MatchPublic]:
    """Take back the group's last decision: the matches it decided wait again, with every friend,
    and the group is undecided (its look-alikes are proposed again)."""
    group = review.group_of(session, owner, group_id)
    if group is None:
        raise HTTPException(404, "no such group")
    return [MatchPublic.of(m) for m in review.undo_group(session, owner, group)]


def _picture(session: SessionDep, owner: CurrentOwner, match_id: int) -> review_cards.Picture:
    """What the owner may see of a match: their own face's region, or the friend's whole photo
    when the friend chose to show it (never the checklist's thumbnail otherwise)."""
    match = review.match_of(session, owner, match_id)
    picture = None if match is None else review_cards.match_picture(session, match)
    if picture is None:
        raise HTTPException(404, "no such match")
    return picture


@router.get(
    "/matches/{match_id}/thumbnail",
    response_class=Response,
    responses=JPEG | errors(401, 404, 422),
)
def match_thumbnail(match_id: RowId, owner: CurrentOwner, session: SessionDep) -> Response:
    """The owner's picture of the match (see _picture)."""
    return _jpeg(_picture(session, owner, match_id).jpeg)


@router.get(
    "/matches/{match_id}/face", response_class=Response, responses=JPEG | errors(401, 404, 422)
)
def match_face(
    match_id: RowId,
    owner: CurrentOwner,
    session: SessionDep,
    height: Annotated[int, Query(ge=32, le=384)] = review_cards.FACE_HEIGHT,
) -> Response:
    """The matched face, cropped from the owner's picture with a margin, `height` px tall."""
    return _jpeg(review_cards.face_picture(_picture(session, owner, match_id), height))


def _jpeg(data: bytes) -> Response:
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )
