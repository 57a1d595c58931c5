"""The friend's checklist page and the unsubscribe link of reminders (no log-in: the token)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from service import checklist
from service.routes.deps import InvitedFriend, RowId, ServicesDep, SessionDep
from service.routes.pages import CsrfChecked, Text, redirect, render
from service.states import FriendStatus
from service.tables import Owner

router = APIRouter(include_in_schema=False)


@router.get("/checklist/{token}", response_class=HTMLResponse)
def checklist_page(
    token: str, request: Request, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Response:
    if friend.status != FriendStatus.accepted:
        return redirect(f"/invite/{token}")  # declined or withdrew: only the invitation is left
    owner = session.get(Owner, friend.owner_id)
    assert owner is not None
    listed = checklist.list_of(session, friend)
    items = listed.items
    views = [checklist.view(item, listed.owner_names(item), token) for item in items]
    return render(
        request,
        services,
        "checklist.html",
        token=token,
        friend=friend,
        owner=owner,
        items=views,
        # Everyone whose photos are on the list (a family circle's members the friend helps).
        names=list(dict.fromkeys(n for item in items for n in listed.owner_names(item)))
        or [owner.name],
        open=checklist.open_count(items),
        # The steps once per platform, above the items, in the order the items come.
        guides={view["platform"]: view["instructions"] for view in views},
        frames=checklist.frames(items),
    )


@router.post("/checklist/{token}/items/{item_id}", dependencies=[CsrfChecked])
def answer(
    token: str,
    item_id: RowId,
    friend: InvitedFriend,
    session: SessionDep,
    status: Text,
) -> Response:
    if friend.status != FriendStatus.accepted:
        return redirect(f"/invite/{token}")
    item = checklist.item_on_list(session, friend, item_id)
    if item is None:
        raise HTTPException(404, "no such item on your list")
    try:
        checklist.answer(session, friend, item, status)
    except checklist.ChecklistError as e:
        raise HTTPException(422, str(e)) from None
    return redirect(f"/checklist/{token}#item-{item.id}")


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(
    token: str, request: Request, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Response:
    owner = session.get(Owner, friend.owner_id)
    return render(
        request,
        services,
        "unsubscribe.html",
        token=token,
        friend=friend,
        owner=owner,
        done=friend.unsubscribed_at is not None,
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(
    token: str, request: Request, friend: InvitedFriend, session: SessionDep, services: ServicesDep
) -> Response:
    """RFC 8058 one-click: mail clients POST here without cookies, so no CSRF token is asked;
    the token in the link is the friend's key, and stopping reminders is all it can do here."""
    checklist.unsubscribe(session, friend)
    owner = session.get(Owner, friend.owner_id)
    return render(
        request, services, "unsubscribe.html", token=token, friend=friend, owner=owner, done=True
    )
