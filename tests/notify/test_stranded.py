"""Mails left half-sent by a dead worker, or never handed to one, are sent after all (once)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from service.db import make_engine, migrate
from service.notify.mail import compose, deliver, retry_delay, stranded_mails
from service.notify.transport import OutboxTransport
from service.tables import OutgoingMail, Owner, utcnow
from tests.conftest import make_settings


def test_it_sends_stranded_mails_exactly_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).prepared()
    db = make_engine(settings.sqlalchemy_url)
    migrate(db)
    now = utcnow()
    with Session(db) as session:
        session.add(Owner(email="a@example.org", name="A", password_hash="-"))
        session.flush()
        ids = []
        for n in range(3):
            mail = compose(
                session,
                kind="invitation",
                key=f"k{n}",
                to=f"f{n}@example.org",
                owner_id=1,
                friend_id=None,
                context={
                    "owner_name": "A",
                    "friend_name": "F",
                    "owner_email": "a@example.org",
                    "invite_url": "u",
                    "report_url": "r",
                    "expires_on": "soon",
                    "again": False,
                    "accepted": False,
                    "also_asking": [],
                },
            )
            assert mail is not None
            ids.append(mail.id)
        dead, lost, fresh = (session.get(OutgoingMail, i) for i in ids)
        assert dead and lost and fresh
        dead.status, dead.attempts, dead.claimed_at = "sending", 1, now - timedelta(minutes=30)
        lost.created_at = now - timedelta(minutes=5)
        session.commit()
    assert sorted(stranded_mails(db, now)) == sorted([ids[0], ids[1]])
    outbox = OutboxTransport(tmp_path / "outbox")
    results = [deliver(db, outbox, settings, i) for i in (ids[0], ids[1], ids[0])]
    assert results == ["sent", "sent", "already sent"]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    assert stranded_mails(db, now + timedelta(hours=1)) == [ids[2]]  # only the untried one
    db.dispose()


def test_it_sends_again_a_mail_whose_retry_was_lost(tmp_path: Path) -> None:
    # A temporary failure schedules a retry in the queue; should that job be lost (a flushed
    # Redis), the mail would wait forever as pending with attempts > 0.
    settings = make_settings(tmp_path).prepared()
    db = make_engine(settings.sqlalchemy_url)
    migrate(db)
    now = utcnow()
    with Session(db) as session:
        session.add(Owner(email="a@example.org", name="A", password_hash="-"))
        session.flush()
        mail = compose(
            session,
            kind="invitation",
            key="k",
            to="f@example.org",
            owner_id=1,
            friend_id=None,
            context={
                "owner_name": "A",
                "owner_email": "a@example.org",
                "friend_name": "F",
                "invite_url": "u",
                "report_url": "r",
                "expires_on": "x",
                "again": False,
                "accepted": False,
                "also_asking": [],
            },
        )
        assert mail is not None
        mail.attempts, mail.claimed_at = 3, now  # its retry is due in retry_delay(3) = 8 s
        session.commit()
        mail_id = mail.id
    assert stranded_mails(db, now + timedelta(seconds=60)) == []  # its retry may still come
    assert stranded_mails(db, now + retry_delay(3) + timedelta(minutes=3)) == [mail_id]
    db.dispose()
