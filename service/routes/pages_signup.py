"""Signing up (by PHOTO_REMOVAL_SIGNUPS, with an owner invitation where asked), confirming the
owner's address by its mailed link, and inviting someone to open an account."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import select

from service import accounts, signups
from service.routes.api_owner import CONFIRMATION_MAILS_PER_HOUR
from service.routes.deps import ServicesDep, SessionDep
from service.routes.forms import SentBack
from service.routes.pages import (
    CsrfChecked,
    PageOwner,
    Text,
    optional_owner,
    redirect,
    render,
)
from service.routes.pages_owner import dashboard, logged_in
from service.security import RateLimited, count_attempt
from service.tables import Owner

router = APIRouter(include_in_schema=False)

PASSWORD_LENGTH = 10  # accounts.register's least; here only to tell which field it refused


@router.get("/signup", response_class=HTMLResponse)
def signup_page(
    request: Request, session: SessionDep, services: ServicesDep, invitation: str = ""
) -> Response:
    """The form, with the invited address filled in when the link holds an invitation."""
    return _form(request, session, services, invitation, None)


@router.post("/signup", dependencies=[CsrfChecked])
def signup(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    name: Text,
    email: Text,
    password: Text,
    invitation: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    typed = {"name": name, "email": email}
    try:
        count_attempt(
            services.db,
            signups.registration_key(request),
            limit=services.settings.registrations_per_hour,
            per=timedelta(hours=1),
        )
        signed_up = signups.sign_up(
            session, services.settings, email, password, name, invitation or None
        )
    except (accounts.AccountError, accounts.NotAllowed, RateLimited) as e:
        session.rollback()  # the page answers normally, so the request would commit
        status = {accounts.NotAllowed: 403, RateLimited: 429}.get(type(e), 422)
        if isinstance(e, accounts.AccountError):
            sent = SentBack("signup", typed, {_wrong_field(name, email, password): str(e)})
        else:
            sent = SentBack("signup", typed, problem=str(e))
        return _form(request, session, services, invitation, sent, status)
    services.queue_mail(session, signed_up.mail)
    return logged_in(session, services, signed_up.owner)


def _wrong_field(name: str, email: str, password: str) -> str:
    """The field an AccountError of signing up is about: accounts.register checks the address,
    the password's length, the name, then whether the address has an account already."""
    try:
        accounts.normalise_email(email)
    except accounts.AccountError:
        return "email"
    if len(password) < PASSWORD_LENGTH:
        return "password"
    return "email" if name.split() else "name"


def _form(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    invitation: str,
    form: SentBack | None,
    status_code: int = 200,
) -> Response:
    held = signups.invitation_for(session, invitation) if invitation else None
    inviter = session.get(Owner, held.inviter_id) if held else None
    return render(
        request,
        services,
        "signup.html",
        status_code=status_code,
        form=form,
        invitation=invitation if held else "",
        invited_address=held.email if held else "",
        inviter=inviter,
        invitation_broken=bool(invitation) and held is None,
        signups=services.settings.signups,
        first=session.exec(select(Owner.id).limit(1)).first() is None,
    )


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm(token: str, request: Request, session: SessionDep, services: ServicesDep) -> Response:
    """The link of the confirmation mail: confirms on opening, and says so kindly."""
    owner = signups.confirm(session, token)
    return render(
        request,
        services,
        "confirmed.html",
        status_code=200 if owner else 404,
        confirmed=owner,
        owner=optional_owner(request, session),
    )


@router.post("/confirm/resend", dependencies=[CsrfChecked])
def resend(owner: PageOwner, session: SessionDep, services: ServicesDep) -> Response:
    if owner.confirmed_at is not None:
        return redirect("/", notice="Your address is confirmed already.")
    try:
        count_attempt(
            services.db,
            f"confirm-mail:{owner.email}",
            limit=CONFIRMATION_MAILS_PER_HOUR,
            per=timedelta(hours=1),
        )
    except RateLimited as e:
        return redirect("/", error=str(e))
    services.queue_mail(session, signups.send_confirmation(session, services.settings, owner))
    return redirect("/", notice=f"A new confirmation link is on its way to {owner.email}.")


@router.post("/owner-invitations", dependencies=[CsrfChecked])
def invite_owner(
    request: Request, owner: PageOwner, session: SessionDep, services: ServicesDep, email: Text
) -> Response:
    try:
        accounts.may_invite(owner)
    except accounts.NotAllowed as e:
        return dashboard(request, session, services, owner, status_code=403, error=str(e))
    try:
        count_attempt(
            services.db,
            f"owner-invite:{owner.id}",
            limit=services.settings.invitations_per_hour,
            per=timedelta(hours=1),
        )
        mail = signups.invite_owner(session, services.settings, owner, email)
    except accounts.AccountError as e:  # not an address, or one with an account
        sent = SentBack("owner-invitation", {"email": email}, {"email": str(e)})
        return dashboard(request, session, services, owner, 422, sent)
    except (accounts.NotAllowed, RateLimited) as e:
        status = 429 if isinstance(e, RateLimited) else 403
        sent = SentBack("owner-invitation", {"email": email}, problem=str(e))
        return dashboard(request, session, services, owner, status, sent)
    services.queue_mail(session, mail)
    address = accounts.normalise_email(email)
    return redirect(
        "/#owner-invitation", notice=f"Invitation to open an account sent to {address}."
    )
