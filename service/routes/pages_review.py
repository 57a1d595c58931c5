"""The owner's review pages: a friend's matches as group cards, a group photo by photo, and the
decisions, each of which can be taken back. Every form works without JavaScript; with it, the
same forms are sent by fetch (Accept: application/json) and answer the card to put in place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from service import checklist, enroll, invites, review, review_cards, standby
from service.routes.deps import RowId, ServicesDep, SessionDep
from service.routes.pages import (
    CsrfChecked,
    PageOwner,
    Text,
    flash_of,
    notice_of,
    redirect,
    render,
    take_flash,
)
from service.states import DECISIONS, Review
from service.tables import Friend, Match, MatchGroup, Owner, ReferenceFace

router = APIRouter(include_in_schema=False)
PageNumber = Annotated[int, Query(ge=1, le=100_000)]
WORDS = {Review.confirmed: "confirmed as you", Review.rejected: "marked “not me”"}


def _friend(session: SessionDep, owner: Owner, friend_id: int) -> Friend:
    friend = invites.friend_of(session, owner, friend_id)
    if friend is None:
        raise HTTPException(404, "no such friend")
    return friend


def _group(session: SessionDep, owner: Owner, group_id: int) -> MatchGroup:
    group = review.group_of(session, owner, group_id)
    if group is None:
        raise HTTPException(404, "no such group")
    return group


def _reference(session: SessionDep, owner: Owner) -> ReferenceFace | None:
    references = enroll.references(session, owner)
    return references[0] if references else None


def _decision(decision: str) -> Review:
    """The owner's decision as sent by a form: confirmed or rejected, else 422."""
    if decision not in DECISIONS:
        raise HTTPException(422, "the decision must be confirmed or rejected")
    return Review(decision)


def _photos(n: int) -> str:
    return f"{n} {'photo' if n == 1 else 'photos'}"


@router.get("/friends/{friend_id}", response_class=HTMLResponse)
def friend_page(
    friend_id: RowId,
    request: Request,
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
    page: PageNumber = 1,
) -> Response:
    friend = _friend(session, owner, friend_id)
    singles = review_cards.singles(session, owner, friend, page)
    items = checklist.items_of(session, friend)
    response = render(
        request,
        services,
        "friend.html",
        owner=owner,
        friend=friend,
        tally=review_cards.tally(session, owner, friend),
        cards=review_cards.group_cards(session, owner, friend),
        singles=singles,
        picture_frames=review_cards.picture_frames(singles.matches, friend),
        reference=_reference(session, owner),
        last_bulk=review.last_bulk(session, owner, friend),
        items=items,
        open_items=checklist.open_count(items),
        notice=notice_of(request),
        error=flash_of(request),
        invite_url=invites.invite_url(services.settings, invites.token_of(services.box, friend)),
    )
    take_flash(request, response)
    return response


@router.get("/friends/{friend_id}/groups/{group_id}", response_class=HTMLResponse)
def group_page(
    friend_id: RowId,
    group_id: RowId,
    request: Request,
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
    page: PageNumber = 1,
) -> Response:
    friend = _friend(session, owner, friend_id)
    group = _group(session, owner, group_id)
    photos = review_cards.group_page(session, owner, friend, group, page)
    if not photos.total:
        raise HTTPException(404, "no such group among this friend's photos")
    return render(
        request,
        services,
        "group.html",
        owner=owner,
        friend=friend,
        card=review_cards.group_card(session, owner, friend, group),
        photos=photos,
        picture_frames=review_cards.picture_frames(photos.matches, friend),
        reference=_reference(session, owner),
    )


def _answer(
    request: Request,
    location: str,
    message: str,
    card: str,
    more: Sequence[str] = (),
    gone: Sequence[str] = (),
) -> Response:
    """JSON for the page's script (the card to put in place, the cards to add after it and the
    ids of those to take away), else back to the page."""
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"message": message, "card": card, "more": more, "gone": gone})
    return redirect(location)


def _match_answer(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    match: Match,
    message: str,
    view: str,
    page: int,
    asked: tuple[Match | None, Match | None] = (None, None),
) -> Response:
    """`asked`: the face of the photo asked about in the match's place before the decision and
    after it (service/standby.py); its card comes with the answer, or goes."""
    in_group = view == "group" and match.group_id is not None
    where = f"/groups/{match.group_id}" if in_group else ""
    query = f"?page={page}" if page > 1 else ""
    location = f"/friends/{match.friend_id}{where}{query}#match-{match.id}"
    friend = session.get_one(Friend, match.friend_id)

    def card(shown: Match) -> str:
        return services.templates.get_template("_match_card.html").render(
            match=shown,
            picture_frames=review_cards.picture_frames([shown], friend),
            csrf_token=request.cookies.get("csrf", ""),
            view=view,
            page=page,
        )

    before, after = asked
    gone = [f"match-{before.id}"] if before is not None and after is not before else []
    more: list[str] = []
    if after is not None and after is not before:
        message += " Another face in this photo looks like you: it is asked about next."
        if not (in_group and after.group_id != match.group_id):  # else it is not on this page
            more.append(card(after))
    return _answer(request, location, message, card(match), more, gone)


@router.post("/matches/{match_id}/review", dependencies=[CsrfChecked])
def review_match(
    match_id: RowId,
    request: Request,
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
    decision: Text,
    view: Text = "friend",
    page: Annotated[int, Form(ge=1)] = 1,
) -> Response:
    match = review.match_of(session, owner, match_id)
    if match is None or decision not in DECISIONS:
        raise HTTPException(404, "no such match")
    chosen = Review(decision)
    before = standby.in_place_of(session, match)
    review.review(session, owner, match, chosen)
    asked = (before, standby.in_place_of(session, match))
    message = f"1 photo {WORDS[chosen]}."
    return _match_answer(request, services, session, match, message, view, page, asked)


@router.post("/matches/{match_id}/review/undo", dependencies=[CsrfChecked])
def undo_match(
    match_id: RowId,
    request: Request,
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
    view: Text = "friend",
    page: Annotated[int, Form(ge=1)] = 1,
) -> Response:
    match = review.match_of(session, owner, match_id)
    if match is None:
        raise HTTPException(404, "no such match")
    before = standby.in_place_of(session, match)
    review.undo(session, owner, match)
    asked = (before, standby.in_place_of(session, match))
    message = "Undone: 1 photo waits for your review again."
    return _match_answer(request, services, session, match, message, view, page, asked)


def _group_answer(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    owner: Owner,
    friend: Friend,
    group: MatchGroup,
    message: str,
    view: str,
) -> Response:
    card = services.templates.get_template("_group_card.html").render(
        card=review_cards.group_card(session, owner, friend, group),
        friend=friend,
        reference=_reference(session, owner),
        csrf_token=request.cookies.get("csrf", ""),
    )
    location = f"/friends/{friend.id}" + (f"/groups/{group.id}" if view == "group" else "")
    return _answer(request, f"{location}#group-{group.id}", message, card)


@router.post("/friends/{friend_id}/groups/{group_id}/review", dependencies=[CsrfChecked])
def review_group(
    friend_id: RowId,
    group_id: RowId,
    request: Request,
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
    decision: Text,
    view: Text = "friend",
) -> Response:
    """Decide every pending photo of the group, this friend's and every other friend's."""
    friend, group = _friend(session, owner, friend_id), _group(session, owner, group_id)
    chosen = _decision(decision)
    decided = review.review_group(session, owner, group, chosen)
    message = f"{_photos(len(decided))} {WORDS[chosen]}."
    return _group_answer(request, services, session, owner, friend, group, message, view)


@router.post("/friends/{friend_id}/groups/{group_id}/review/undo", dependencies=[CsrfChecked])
def undo_group(
    friend_id: RowId,
    group_id: RowId,
    request: Request,
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
    view: Text = "friend",
) -> Response:
    friend, group = _friend(session, owner, friend_id), _group(session, owner, group_id)
    back = review.undo_group(session, owner, group)
    message = f"Undone: {_photos(len(back))} wait for your review again."
    return _group_answer(request, services, session, owner, friend, group, message, view)


@router.post("/friends/{friend_id}/review-all", dependencies=[CsrfChecked])
def review_all(
    friend_id: RowId,
    request: Request,
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
    decision: Text,
    band: Annotated[str | None, Form()] = None,
    confirm: Text = "",
) -> Response:
    """Decide every pending photo at once; "not me" for all is asked about first (the page's
    script asks in a dialog; without it, this answers a page that asks)."""
    friend = _friend(session, owner, friend_id)
    chosen = _decision(decision)
    if chosen == Review.rejected and confirm != "yes":
        tally = review_cards.tally(session, owner, friend)
        waiting = tally.pending[band] if band else tally.waiting
        return render(
            request,
            services,
            "review_all_confirm.html",
            owner=owner,
            friend=friend,
            band=band,
            waiting=waiting,
        )
    review.review_all(session, owner, friend, chosen, band or None)
    return redirect(f"/friends/{friend_id}#matches")  # the page offers to undo it


@router.post("/friends/{friend_id}/review-all/undo", dependencies=[CsrfChecked])
def undo_all(friend_id: RowId, owner: PageOwner, session: SessionDep) -> Response:
    friend = _friend(session, owner, friend_id)
    review.undo_all(session, owner, friend)
    return redirect(f"/friends/{friend_id}#matches")
