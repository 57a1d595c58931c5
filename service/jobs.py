"""Background jobs on Huey: the SQLite queue in the data dir, or Redis for several machines.

Tasks are thin: they call a stage. A job is sent only after the transaction that created its
rows commits (`enqueue_after_commit`); a rolled-back transaction sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey
from huey.consumer import Consumer
from sqlalchemy import Engine, event
from sqlmodel import Session

from service.config import Settings
from service.faces.decision import DecisionRule
from service.faces.matching import Thresholds
from service.ingest.fetch import FetchOptions
from service.notify.mail import deliver, stranded_mails
from service.notify.reminders import send_due_digests, send_due_reminders
from service.notify.transport import TemporaryFailure, make_transport
from service.scan import ScanContext, run_scan, stalled_scans
from service.secrets_box import SecretBox
from service.tables import utcnow
from service.verify import run_due_checks

log = logging.getLogger(__name__)
_PENDING = "photo_removal_jobs"
TICK_SECONDS = 5


def fetch_options(settings: Settings) -> FetchOptions:
    return FetchOptions(
        allow_private=settings.allow_private_fetch,
        bluesky_api=settings.bluesky_api,
        flickr_api_key=settings.flickr_api_key or None,
    )


def make_huey(settings: Settings) -> Huey:
    url = settings.queue_url
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("photo-removal", url=url, results=False)
    path = url.removeprefix("sqlite:///") if url else str(settings.data_dir / "queue.db")
    return SqliteHuey("photo-removal", filename=path, results=False)


class Jobs:
    """The queue and its tasks, built from settings the same way by producers and consumers."""

    def __init__(self, settings: Settings, db: Engine) -> None:
        self.settings = settings
        self.transport = make_transport(settings)
        self.huey = make_huey(settings)
        self.context = ScanContext(
            db=db,
            box=SecretBox(settings.secret_key),
            thresholds=Thresholds.load(),
            rule=DecisionRule.load(),
            workers=settings.scan_workers or None,
            fetch=fetch_options(settings),
            lease=settings.scan_lease,
        )
        self.scan = self.huey.task(name="scan")(self._scan)
        self.send_mail = self.huey.task(name="send_mail")(self._send_mail)
        self.tick = self.huey.task(name="tick")(self.run_due_work)
        self.huey.periodic_task(crontab(minute="*"), name="clock")(self._clock)

    @property
    def embedded(self) -> bool:
        """The SQLite queue lives on this machine, so `serve` consumes it itself."""
        return isinstance(self.huey, SqliteHuey)

    def _scan(self, scan_id: int) -> None:
        run_scan(self.context, scan_id)

    def _send_mail(self, mail_id: int, attempt: int = 1) -> None:
        try:
            log.info(
                "mail %s: %s",
                mail_id,
                deliver(self.context.db, self.transport, self.settings, mail_id),
            )
        except TemporaryFailure as e:
            delay = min(2**attempt, 3600)  # 2 s, 4 s, 8 s ... up to an hour
            log.warning("mail %s: %s; retrying in %s s", mail_id, e, delay)
            self.send_mail.schedule((mail_id, attempt + 1), delay=delay)

    def _clock(self) -> None:
        """Huey's periodic tasks run once a minute; reminders and checks may be due every few
        seconds (PHOTO_REMOVAL_REMINDER_AFTER=10s), so the minute is cut into ticks."""
        self.recover_scans()
        for mail_id in stranded_mails(self.context.db, utcnow()):
            self.send_mail(mail_id)
        for delay in range(0, 60, TICK_SECONDS):
            self.tick.schedule(delay=delay)

    def run_due_work(self, now: datetime | None = None) -> None:
        """Reminders, digests and re-checks whose time has come; each picks due rows."""
        now = now or utcnow()
        db, settings, box = self.context.db, self.settings, self.context.box
        mails = send_due_reminders(db, settings, box, now) + send_due_digests(db, now)
        mails += run_due_checks(db, fetch_options(settings), settings.verify_interval, now)
        for mail_id in mails:
            self.send_mail(mail_id)

    def recover_scans(self) -> None:
        """Re-send scans whose worker died; they resume where they stopped."""
        for scan_id in stalled_scans(self.context.db):
            log.info("resuming scan %s", scan_id)
            self.scan(scan_id)

    def consumer(self, workers: int, *, signals: bool = False) -> Consumer:
        """`signals`: the consumer owns the process (the worker command), not a web server."""
        kind = Consumer if signals else _QuietConsumer
        return kind(self.huey, workers=workers, worker_type="thread", periodic=True)


class _QuietConsumer(Consumer):
    """A consumer that leaves signal handling to its host (uvicorn or the worker command)."""

    def _set_signal_handlers(self) -> None:
        pass


def enqueue_after_commit(session: Session, task: Callable[..., Any], *args: Any) -> None:
    session.info.setdefault(_PENDING, []).append((task, args))


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    for task, args in session.info.pop(_PENDING, []):
        task(*args)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
