"""The owner's pages: log-in, the dashboard, inviting friends, the account (sign-up and
confirming the address: pages_signup.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from service import accounts, admin, checklist, checklist_mail, enroll, invites, news, review
from service.config import Settings
from service.notify import owner_mails
from service.routes.api_owner import MAX_REFERENCE_BYTES
from service.routes.deps import SESSION_COOKIE, RowId, ServicesDep, SessionDep
from service.routes.forms import SentBack
from service.routes.pages import (
    CsrfChecked,
    PageOwner,
    Text,
    flash_of,
    notice_of,
    optional_owner,
    redirect,
    render,
    take_flash,
)
from service.security import RateLimited, count_attempt
from service.states import FriendStatus, TokenKind
from service.tables import Friend, Owner

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, services: ServicesDep) -> Response:
    owner = optional_owner(request, session)
    if owner is None:
        return render(request, services, "welcome.html")
    response = dashboard(
        request, session, services, owner, error=flash_of(request), notice=notice_of(request)
    )
    take_flash(request, response)
    return response


def dashboard(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    owner: Owner,
    status_code: int = 200,
    form: SentBack | None = None,
    **messages: str | None,
) -> Response:
    """The dashboard; with `form`, one of its forms sent back with what is wrong in it."""
    return render(
        request,
        services,
        "dashboard.html",
        status_code=status_code,
        form=form,
        owner=owner,
        references=enroll.references(session, owner),
        friends=invites.friends_of(session, owner),
        pending=review.pending_count(session, owner),
        waiting_on=review.first_waiting(session, owner),
        invited=request.query_params.get("invited"),
        may_invite_owners=_may_invite_owners(services.settings, owner),
        open_reports=admin.open_reports(session) if owner.is_admin else 0,
        news=news.latest(session, owner),
        **messages,
    )


def _may_invite_owners(settings: Settings, owner: Owner) -> bool:
    """The dashboard offers the owner-invitation form (the one way in under SIGNUPS=invite)."""
    return settings.signups != "closed" and owner.confirmed_at is not None and not owner.frozen_at


def back_here(path: str) -> str:
    """Where to go after logging in: a path of this site, else the dashboard (never another
    site: `//evil.example` and `/\\evil.example` are other sites to a browser)."""
    ok = path.startswith("/") and not path.startswith(("//", "/\\")) and "\n" not in path
    return path if ok else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, services: ServicesDep) -> Response:
    then = back_here(request.query_params.get("next", "/"))
    return render(request, services, "login.html", form=None, next=then)


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    email: Text,
    password: Text,
    next: Text = "/",
) -> Response:
    client = request.client.host if request.client else "?"
    then = back_here(next)
    typed = {"email": email}

    def again(status_code: int, sent: SentBack) -> Response:
        page = "login.html"
        return render(request, services, page, status_code=status_code, form=sent, next=then)

    try:
        email = accounts.normalise_email(email)
    except accounts.AccountError as e:
        return again(422, SentBack("login", typed, {"email": str(e)}))
    try:
        count_attempt(
            services.db,
            f"login:{email}:{client}",
            limit=services.settings.login_attempts_per_15min,
            per=timedelta(minutes=15),
        )
    except RateLimited as e:
        return again(429, SentBack("login", typed, problem=str(e)))
    owner = accounts.authenticate(session, email, password)
    if owner is None:
        wrong = {"password": "wrong e-mail address or password"}  # the one typed again
        return again(401, SentBack("login", typed, wrong))
    return logged_in(session, services, owner, then)


def logged_in(
    session: SessionDep, services: ServicesDep, owner: accounts.Owner, then: str = "/"
) -> Response:
    response = redirect(then)
    response.set_cookie(
        SESSION_COOKIE,
        accounts.issue_token(session, owner, TokenKind.session),
        httponly=True,
        samesite="lax",
        max_age=14 * 86400,
        secure=services.settings.base_url.startswith("https"),
    )
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, session: SessionDep) -> Response:
    if cookie := request.cookies.get(SESSION_COOKIE):
        accounts.revoke_token(session, cookie)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE)
    return response


REFERENCES_AT_ONCE = 5  # the form takes several photos; the API one at a time


@router.post("/reference-photos", dependencies=[CsrfChecked])
def add_reference(
    request: Request,
    file: list[UploadFile],
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
) -> Response:
    """One or several photos of the owner's face; each is judged on its own, and the page says
    what came of each (the good ones are kept even when another is refused)."""

    def refused_as(error: str, notice: str | None = None) -> Response:
        sent = SentBack("references", {}, {"file": error})
        return dashboard(request, session, services, owner, 422, sent, notice=notice)

    if len(file) > REFERENCES_AT_ONCE:
        return refused_as(f"please choose at most {REFERENCES_AT_ONCE} photos")
    added, refused = 0, []
    for upload in file:
        data = upload.file.read(MAX_REFERENCE_BYTES + 1)
        name = upload.filename or "a photo"
        if len(data) > MAX_REFERENCE_BYTES:
            refused.append(f"{name}: larger than 30 MB, please choose a smaller one")
            continue
        try:
            enroll.enroll(session, owner, data, services.face_engine(), services.box)
            added += 1
        except enroll.EnrollError as e:
            refused.append(f"{name}: {e}" if len(file) > 1 else str(e))
    kept = f"Added {added} photo{'s' if added != 1 else ''} of your face." if added else None
    if refused:
        return refused_as("; ".join(refused), notice=kept)
    return redirect("/#references", notice=kept)


@router.post("/reference-photos/{reference_id}/delete", dependencies=[CsrfChecked])
def delete_reference(reference_id: RowId, owner: PageOwner, session: SessionDep) -> Response:
    ref = enroll.reference_of(session, owner, reference_id)
    if ref is None:
        raise HTTPException(404, "no such reference photo")
    enroll.remove(session, owner, ref)
    return redirect("/#references")


@router.post("/friends", dependencies=[CsrfChecked])
def invite(
    request: Request,
    owner: PageOwner,
    session: SessionDep,
    services: ServicesDep,
    name: Text,
    email: Text,
) -> Response:
    """Like the API: 403 (the dashboard, saying why) until the address is confirmed, and while
    a friend's report freezes the owner."""
    try:
        accounts.may_invite(owner)
    except accounts.NotAllowed as e:
        return dashboard(request, session, services, owner, status_code=403, error=str(e))
    typed = {"name": name, "email": email}
    try:
        invites.count_invitation(services.db, services.settings, owner)
        friend, _, mail = invites.invite(
            session, services.settings, services.box, owner, name, email
        )
    except RateLimited as e:
        sent = SentBack("friend", typed, problem=str(e))
        return dashboard(request, session, services, owner, 429, sent)
    except invites.InviteError as e:
        # The stage checks the name, then the address (its form, whether it was invited already).
        wrong = "name" if not name.strip() else "email"
        sent = SentBack("friend", typed, {wrong: str(e)})
        return dashboard(request, session, services, owner, 422, sent)
    services.queue_mail(session, mail)
    return redirect(f"/?invited={friend.id}#friends")


def _friend(session: SessionDep, owner: Owner, friend_id: int) -> Friend:
    friend = invites.friend_of(session, owner, friend_id)
    if friend is None:
        raise HTTPException(404, "no such friend")
    return friend


@router.post("/friends/{friend_id}/resend", dependencies=[CsrfChecked])
def resend(
    friend_id: RowId, owner: PageOwner, session: SessionDep, services: ServicesDep
) -> Response:
    """Mail a new link (the old one stops working), back where the owner clicked."""
    friend = _friend(session, owner, friend_id)
    back = "/#invitations" if friend.status == FriendStatus.invited else f"/friends/{friend_id}"
    try:
        invites.count_invitation(services.db, services.settings, owner)
        _, mail = invites.resend(session, services.settings, services.box, owner, friend)
    except (accounts.NotAllowed, invites.InviteError, RateLimited) as e:
        return redirect(back, error=str(e))
    services.queue_mail(session, mail)
    if mail is None:  # a double click: the link mailed a moment ago is the live one
        return redirect(back, notice=f"A new link went to {friend.name} a moment ago.")
    return redirect(back, notice=f"A new link is on its way to {friend.name} ({friend.email}).")


@router.post("/friends/{friend_id}/revoke", dependencies=[CsrfChecked])
def revoke(
    friend_id: RowId, owner: PageOwner, session: SessionDep, services: ServicesDep
) -> Response:
    """Cancel the invitation and delete what the friend shared."""
    friend = _friend(session, owner, friend_id)
    name = friend.name
    invites.revoke(session, friend, services.settings.outbox_dir)
    return redirect(
        "/#friends", notice=f"The invitation to {name} is cancelled; its link no longer works."
    )


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, owner: PageOwner, services: ServicesDep) -> Response:
    response = render(
        request,
        services,
        "account.html",
        owner=owner,
        notices=owner_mails.NOTICES,
        notice=notice_of(request),
    )
    take_flash(request, response)
    return response


@router.post("/account/mails", dependencies=[CsrfChecked])
def set_mails(
    owner: PageOwner,
    session: SessionDep,
    wanted: Annotated[list[str] | None, Form()] = None,  # the ticked kinds
) -> Response:
    """The account page's choice of mails: the kinds left unticked are muted."""
    owner.muted = sorted(set(owner_mails.NOTICES) - set(wanted or []))
    session.add(owner)
    return redirect("/account#mails", notice="Your choice of mails is saved.")


@router.post("/account/delete", dependencies=[CsrfChecked])
def delete_account(owner: PageOwner, session: SessionDep, services: ServicesDep) -> Response:
    accounts.delete_owner(session, owner, services.settings.outbox_dir)
    response = redirect("/?deleted=1")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/friends/{friend_id}/checklist/send", dependencies=[CsrfChecked])
def send_checklist(
    friend_id: RowId, owner: PageOwner, session: SessionDep, services: ServicesDep
) -> Response:
    friend = invites.friend_of(session, owner, friend_id)
    if friend is None:
        raise HTTPException(404, "no such friend")
    try:
        sending = checklist_mail.send(session, services.settings, services.box, owner, friend)
    except checklist.ChecklistError as e:
        return redirect(f"/friends/{friend_id}#checklist", error=str(e))
    services.queue_mail(session, sending.mail)
    return redirect(f"/friends/{friend_id}#checklist", notice=sending.detail)
