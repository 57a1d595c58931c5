"""The checklist in the JSON API: the owner sends it, the friend reads and answers it."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from service import checklist, checklist_mail, invites
from service.posts import Post
from service.routes.deps import (
    ConsentingFriend,
    CurrentOwner,
    RowId,
    ServicesDep,
    SessionDep,
)
from service.routes.openapi import BODY, JPEG, errors
from service.routes.schemas import (
    AnswerRequest,
    ChecklistItemPublic,
    ChecklistPublic,
    ChecklistQueued,
)
from service.tables import Friend, Owner

router = APIRouter(prefix="/api/v1")


@router.post(
    "/friends/{friend_id}/checklist/send", status_code=202, responses=errors(401, 404, 422)
)
def send_checklist(
    friend_id: RowId, owner: CurrentOwner, session: SessionDep, services: ServicesDep
) -> ChecklistQueued:
    friend = invites.friend_of(session, owner, friend_id)
    if friend is None:
        raise HTTPException(404, "no such friend")
    try:
        sending = checklist_mail.send(session, services.settings, services.box, owner, friend)
    except checklist.ChecklistError as e:
        raise HTTPException(422, str(e)) from None
    services.queue_mail(session, sending.mail)
    items = checklist.items_of(session, friend)
    return ChecklistQueued(
        items=len(items),
        open_items=checklist.open_count(items),
        sent=sending.sent,
        detail=sending.detail,
    )


def item_public(token: str, item: Post, listed: checklist.FriendList) -> ChecklistItemPublic:
    view = checklist.view(item, listed.owner_names(item), token)
    return ChecklistItemPublic.model_validate(view)


def _owner(session: SessionDep, friend: Friend) -> Owner:
    owner = session.get(Owner, friend.owner_id)
    assert owner is not None
    return owner


@router.get("/invites/{token}/checklist", responses=errors(403, 404, 422))
def get_checklist(token: str, friend: ConsentingFriend, session: SessionDep) -> ChecklistPublic:
    """The friend's one list: in a family circle, every member's photos they help with."""
    listed = checklist.list_of(session, friend)
    return ChecklistPublic(
        owner_name=_owner(session, friend).name,
        items=[item_public(token, i, listed) for i in listed.items],
    )


def _item(session: SessionDep, friend: Friend, item_id: int) -> Post:
    item = checklist.item_on_list(session, friend, item_id)
    if item is None:
        raise HTTPException(404, "no such item on your list")
    return item


@router.post("/invites/{token}/checklist/{item_id}", responses=errors(403, 404, *BODY))
def answer_item(
    token: str, item_id: RowId, body: AnswerRequest, friend: ConsentingFriend, session: SessionDep
) -> ChecklistItemPublic:
    item = checklist.answer(session, friend, _item(session, friend, item_id), body.status)
    return item_public(token, item, checklist.list_of(session, friend))


@router.get(
    "/invites/{token}/checklist/{item_id}/thumbnail",
    response_class=Response,
    responses=JPEG | errors(403, 404, 422),
)
def item_thumbnail(item_id: RowId, friend: ConsentingFriend, session: SessionDep) -> Response:
    """The friend's photo: an item's first, or any photo of an item by its match id."""
    match = checklist.match_on_list(session, friend, item_id)
    if match is None:
        raise HTTPException(404, "no such item on your list")
    if match.thumbnail is None:
        raise HTTPException(404, "no thumbnail")
    return Response(
        match.thumbnail,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600"},
    )
