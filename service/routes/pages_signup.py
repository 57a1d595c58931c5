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


@router.get("/signup", response_class=HTMLResponse)
def signup_page(
    request: Request, session: SessionDep, services: ServicesDep, invitation: str = ""
) -> Response:
    """The form, with the invited address filled in when the link holds an invitation."""
    held = signups.invitation_for(session, invitation) if invitation else None
    return _form(
        request, session, services, invitation, values={"email": held.email if held else ""}
    )


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
    values = {"name": name, "email": email}
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
        return _form(request, session, services, invitation, values, status, str(e))
    services.queue_mail(session, signed_up.mail)
    return logged_in(session, services, signed_up.owner)


def _form(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    invitation: str,
    values: dict[str, str],
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    held = signups.invitation_for(session, invitation) if invitation else None
    inviter = session.get(Owner, held.inviter_id) if held else None
    return render(
        request,
        services,
        "signup.html",
        status_code=status_code,
        error=error,
        values=values,
        invitation=invitation if held else "",
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
    except (accounts.AccountError, accounts.NotAllowed, RateLimited) as e:
        return redirect("/#owner-invitation", error=str(e))
    services.queue_mail(session, mail)
    address = accounts.normalise_email(email)
    return redirect(
        "/#owner-invitation", notice=f"Invitation to open an account sent to {address}."
    )
