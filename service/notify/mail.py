"""Mail records: rendered from `web/templates/emails/<name>/`, written before they are sent."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from typing import Any, NamedTuple

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape
from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from service.config import Settings
from service.db import unit_of_work
from service.notify.transport import TemporaryFailure, Transport
from service.secrets_box import SecretBox, box_for
from service.states import MailStatus
from service.tables import OutgoingMail, utcnow

log = logging.getLogger(__name__)
EMAILS = Path(__file__).resolve().parents[2] / "web" / "templates" / "emails"
MAX_ATTEMPTS = 8

_templates = Environment(
    loader=FileSystemLoader(EMAILS),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


class SecretLinks:
    """The links of a mail that carry a token (an invitation, a checklist, a confirmation).

    A stored mail holds a placeholder where each goes (in its bodies and headers), and the
    links themselves sealed; they are put in only as the mail is sent. So a copy of the
    database, or of a queued mail, hands out no key.
    """

    def __init__(self, box: SecretBox, **urls: str) -> None:
        self.box, self.urls = box, urls
        # The nonce keeps text a person typed (a name, a caption) from posing as a placeholder.
        self.nonce = secrets.token_hex(8)

    def placeholder(self, name: str) -> str:
        return _placeholder(name, self.nonce)

    def sealed(self) -> bytes:
        return self.box.seal_bytes(json.dumps({"nonce": self.nonce, "urls": self.urls}).encode())


def _placeholder(name: str, nonce: str) -> str:
    return f"[link:{name}:{nonce}]"


def unsealed(mail: OutgoingMail, box: SecretBox) -> tuple[str, str, dict[str, str]]:
    """The mail's plain-text body, HTML body and headers as sent: with its links put in."""
    text, html, headers = mail.text, mail.html, dict(mail.headers)
    if mail.sealed_links:
        opened = json.loads(box.open_bytes(mail.sealed_links))
        for name, url in opened["urls"].items():
            placeholder = _placeholder(name, opened["nonce"])
            text, html = text.replace(placeholder, url), html.replace(placeholder, escape(url))
            headers = {k: v.replace(placeholder, url) for k, v in headers.items()}
    return text, html, headers


class Rendered(NamedTuple):
    subject: str
    text: str
    html: str


def render(kind: str, context: dict[str, Any]) -> Rendered:
    """The mail's subject (on one line), plain text and HTML. The HTML gets the subject as
    `subject`, for its <title> (see emails/_layout.html)."""
    subject = " ".join(_templates.get_template(f"{kind}/subject.txt").render(context).split())
    return Rendered(
        subject,
        _templates.get_template(f"{kind}/body.txt").render(context),
        _templates.get_template(f"{kind}/body.html").render({**context, "subject": subject}),
    )


def compose(
    session: Session,
    *,
    kind: str,
    key: str,
    to: str,
    owner_id: int,
    friend_id: int | None,
    context: dict[str, Any],
    links: SecretLinks | None = None,
    headers: dict[str, str] | None = None,
) -> OutgoingMail | None:
    """Add the mail for `key` unless it exists already (same key, same mail: never twice).

    The key says what the mail is about, never when it was written (see the callers). It is
    written with INSERT ... ON CONFLICT DO NOTHING on its unique column, so of two transactions
    composing the same mail at once one writes it and the other gets None, not an error.
    `links` are rendered as placeholders and stored sealed (see SecretLinks).
    """
    known = session.exec(select(OutgoingMail.id).where(OutgoingMail.idempotency_key == key))
    if known.first() is not None:
        return None
    if links is not None:
        context = {**context, **{name: links.placeholder(name) for name in links.urls}}
    values = {
        "owner_id": owner_id,
        "friend_id": friend_id,
        "kind": kind,
        "idempotency_key": key,
        "to": to,
        **render(kind, context)._asdict(),
        "headers": headers or {},
        "sealed_links": links.sealed() if links is not None else None,
    }
    mail_id = session.execute(_insert_once(session, values)).scalar_one_or_none()
    return session.get(OutgoingMail, mail_id) if mail_id is not None else None


def _insert_once(session: Session, values: dict[str, Any]) -> Any:
    table = OutgoingMail.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=[table.c.idempotency_key])
        .returning(table.c.id)
    )


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def outbox_file(key: str) -> str:
    """The name of the outbox file of the mail with this key (see OutboxTransport)."""
    return f"{_digest(key)}.eml"


def message_for(mail: OutgoingMail, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr(("Photo removal", settings.mail_from))
    message["To"] = mail.to
    message["Subject"] = mail.subject
    # A stable Message-ID: should a crash make us send twice, mail clients still show one.
    domain = settings.mail_from.rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{_digest(mail.idempotency_key)}@{domain}>"
    text, html, headers = unsealed(mail, box_for(settings.secret_key))
    for name, value in headers.items():
        message[name] = value
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def deliver(db: Engine, transport: Transport, settings: Settings, mail_id: int) -> str:
    """Send one mail if it is still pending; returns what happened, in words.

    The mail is claimed first (pending -> sending, in its own transaction), so two workers
    handed the same job never both send it.
    """
    with unit_of_work(db) as session:
        claimed = session.execute(
            update(OutgoingMail)
            .where(col(OutgoingMail.id) == mail_id, col(OutgoingMail.status) == MailStatus.pending)
            .values(
                status=MailStatus.sending, attempts=OutgoingMail.attempts + 1, claimed_at=utcnow()
            )
        )
        mail = session.get(OutgoingMail, mail_id)
        if mail is None:
            return "gone: its owner or friend was deleted"
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return f"already {mail.status}"
        message = message_for(mail, settings)
    try:
        transport.send(message)
    except TemporaryFailure as e:
        retry = mail.attempts < MAX_ATTEMPTS
        _record(db, mail_id, MailStatus.pending if retry else MailStatus.failed, str(e))
        raise
    except Exception as e:  # a permanent refusal (5xx, bad address): retrying will not help
        log.warning("mail %s refused: %s", mail_id, e)
        _record(db, mail_id, MailStatus.failed, str(e))
        return "failed"
    _record(db, mail_id, MailStatus.sent, None)
    return "sent"


def _record(db: Engine, mail_id: int, status: MailStatus, error: str | None) -> None:
    with unit_of_work(db) as session:
        mail = session.get(OutgoingMail, mail_id)
        if mail is not None:
            mail.status, mail.last_error = status, error
            mail.sent_at = utcnow() if status is MailStatus.sent else None
            session.add(mail)


STALE_CLAIM = timedelta(minutes=10)
NEVER_TRIED = timedelta(minutes=2)


def retry_delay(attempts: int) -> timedelta:
    """How long a mail waits after a temporary failure: 2 s, 4 s, 8 s ... up to an hour."""
    return timedelta(seconds=min(2**attempts, 3600))


def stranded_mails(db: Engine, now: datetime) -> list[int]:
    """Mails to try again: claimed by a worker that died mid-send, never handed to a worker (its
    job lost), or whose retry is overdue (the scheduled retry was lost). Sending them again is
    safe: a mail only goes out from 'pending', claimed by one worker."""
    with unit_of_work(db) as session:
        stale = session.exec(
            select(OutgoingMail).where(
                OutgoingMail.status == MailStatus.sending,
                col(OutgoingMail.claimed_at) < now - STALE_CLAIM,
            )
        ).all()
        for mail in stale:
            mail.status = MailStatus.pending
            session.add(mail)
        waiting = session.exec(
            select(OutgoingMail.id).where(
                OutgoingMail.status == MailStatus.pending,
                OutgoingMail.attempts == 0,
                col(OutgoingMail.created_at) < now - NEVER_TRIED,
            )
        ).all()
        retrying = session.exec(
            select(OutgoingMail.id, OutgoingMail.attempts, OutgoingMail.claimed_at).where(
                OutgoingMail.status == MailStatus.pending,
                OutgoingMail.attempts > 0,
                col(OutgoingMail.claimed_at) < now - NEVER_TRIED,
            )
        ).all()
        overdue = [i for i, n, at in retrying if at and at + retry_delay(n) + NEVER_TRIED < now]
        stranded = [m.id for m in stale] + list(waiting) + overdue
        return [i for i in dict.fromkeys(stranded) if i is not None]  # a stale claim is overdue too
