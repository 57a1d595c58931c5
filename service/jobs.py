"""Background jobs on Huey: the SQLite queue in the data dir, or Redis for several machines.

Tasks are thin: they call a stage. The database row is the job (a scan, a mail); the queue only
carries its id. A job is sent after the transaction that created its row commits
(`enqueue_after_commit`), a rolled-back transaction sends nothing, and a send that fails or is lost
(a crash between commit and send) is made good by the sweep, which sends rows left waiting again.

Periodic work runs once per period however many consumers run: each consumer's clock fires, but
only the one whose conditional UPDATE moves `periodic.next_run_at` on does the work
(`_claim_period`). Inside it, every due row is claimed and pushed forward before its work too,
so even two runs that overlapped (a slow tick) could not send a mail twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey
from huey.consumer import Consumer
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from service import resumable
from service.config import Settings
from service.db import after_commit, remove_files, unit_of_work
from service.faces.decision import DecisionRule
from service.faces.matching import Thresholds
from service.ingest.fetch import FetchOptions
from service.notify.export_reminders import send_due_export_reminders
from service.notify.mail import deliver, retry_delay, stranded_mails
from service.notify.reminders import send_due_digests, send_due_reminders
from service.notify.transport import TemporaryFailure, make_transport
from service.private_files import private_file
from service.scan import ScanContext, run_scan, waiting_scans
from service.secrets_box import SecretBox
from service.tables import ExportUpload, Periodic, Source, utcnow
from service.verify import run_due_checks

log = logging.getLogger(__name__)
TICK_SECONDS = 5
SWEEP = timedelta(minutes=1)
# An upload in quarantine that no source points to is a leftover (a worker or server killed
# mid-upload); one younger than this may still be arriving.
ORPHAN_AGE = timedelta(minutes=30)


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
    private_file(Path(path))
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
            base_url=settings.base_url,
            send_mail=lambda mail_id: self.send_mail(mail_id),
        )
        self.scan = self.huey.task(name="scan")(self._scan)
        self.send_mail = self.huey.task(name="send_mail")(self._send_mail)
        self.tick = self.huey.task(name="tick")(self._tick)
        self.huey.periodic_task(crontab(minute="*"), name="clock")(self._clock)

    @property
    def embedded(self) -> bool:
        """The SQLite queue lives on this machine, so `serve` consumes it itself."""
        return isinstance(self.huey, SqliteHuey)

    def _scan(self, scan_id: int) -> None:
        if run_scan(self.context, scan_id):  # given back by a stopping process: queue it again
            self.scan(scan_id)

    def _send_mail(self, mail_id: int, attempt: int = 1) -> None:
        try:
            log.info(
                "mail %s: %s",
                mail_id,
                deliver(self.context.db, self.transport, self.settings, mail_id),
            )
        except TemporaryFailure as e:
            delay = retry_delay(attempt)
            log.warning("mail %s: %s; retrying in %s", mail_id, e, delay)
            self.send_mail.schedule((mail_id, attempt + 1), delay=delay.total_seconds())

    def start(self) -> None:
        """When a consumer starts: send again what waits, and tick at once rather than at the
        next minute (Huey's clock only fires on the minute)."""
        self.sweep()
        self._schedule_ticks()

    def _clock(self) -> None:
        """Huey's periodic tasks run once a minute; reminders and checks may be due every few
        seconds (PHOTO_REMOVAL_REMINDER_AFTER=10s), so the minute is cut into ticks."""
        if _claim_period(self.context.db, "sweep", SWEEP):
            self.sweep()
        self._schedule_ticks()

    def _schedule_ticks(self) -> None:
        for delay in range(0, 60, TICK_SECONDS):
            self.tick.schedule(delay=delay)

    def _tick(self) -> None:
        # A little under the tick, so clocks a few ms apart still give one run per tick.
        if _claim_period(self.context.db, "tick", timedelta(seconds=TICK_SECONDS * 0.8)):
            self.resend_scans()  # a dead worker's scan resumes a lease and a tick after it died
            self.run_due_work()

    def run_due_work(self, now: datetime | None = None) -> None:
        """Reminders (of checklists and of downloads asked for), digests and re-checks whose time
        has come; each claims its due rows.

        One failing kind of work is logged and never keeps the others from running.
        """
        now = now or utcnow()
        db, settings, box = self.context.db, self.settings, self.context.box
        stages: list[tuple[str, Callable[[], list[int]]]] = [
            ("reminders", lambda: send_due_reminders(db, settings, box, now)),
            ("digests", lambda: send_due_digests(db, settings, now)),
            ("export reminders", lambda: send_due_export_reminders(db, settings, box, now)),
            (
                "checks",
                lambda: run_due_checks(
                    db, fetch_options(settings), settings.verify_interval, now, settings.base_url
                ),
            ),
        ]
        for name, stage in stages:
            try:
                mails = stage()
            except Exception:
                log.exception("periodic %s failed; the next tick tries again", name)
                continue
            for mail_id in mails:
                self._send_quietly(mail_id)

    def sweep(self) -> None:
        """Send again the jobs whose rows wait with nothing in the queue for them (scans queued
        or stalled because their worker died, mails stranded); delete orphaned uploads."""
        self.resend_scans()
        for mail_id in stranded_mails(self.context.db, utcnow()):
            self._send_quietly(mail_id)
        resumable.expire(self.context.db, utcnow())
        reap_quarantine(self.context.db, self.settings.quarantine_dir)

    def resend_scans(self) -> None:
        waiting = waiting_scans(self.context.db, utcnow())
        pending = self._pending_scans() if waiting else set()
        for scan_id in waiting:
            if scan_id not in pending:
                log.info("sending scan %s again", scan_id)
                self.scan(scan_id)

    def _pending_scans(self) -> set[int]:
        try:
            return {task.args[0] for task in self.huey.pending() if task.name == "scan"}
        except Exception:  # a queue we cannot list: sending twice is harmless (claims are atomic)
            log.warning("could not list the queue", exc_info=True)
            return set()

    def _send_quietly(self, mail_id: int) -> None:
        try:
            self.send_mail(mail_id)
        except Exception:
            log.exception("could not queue mail %s; the sweep sends it later", mail_id)

    def consumer(self, workers: int, *, signals: bool = False) -> Consumer:
        """`signals`: the consumer owns the process (the worker command), not a web server."""
        kind = _StoppingConsumer if signals else _QuietConsumer
        return kind(
            self.huey,
            stopping=self.context.stopping,
            workers=workers,
            worker_type="thread",
            periodic=True,
            graceful_signal="TERM",  # SIGTERM waits for the jobs in hand, which stop soon
            max_delay=2.0,  # an idle consumer of the SQLite queue polls every 2 s, not 10 s
        )

    def stop(self, consumer: Consumer) -> None:
        """Stop cleanly: a running scan records its finished photos, gives the rest back to the
        queue and shuts its face engines down; a mail being sent is sent. Then the consumer ends."""
        self.context.stopping.set()
        consumer.stop(graceful=True)


class _StoppingConsumer(Consumer):
    """Huey's consumer, which also tells running scans to give their work back on a signal."""

    def __init__(self, huey: Huey, *, stopping: threading.Event, **options: Any) -> None:
        super().__init__(huey, **options)
        self._stopping = stopping

    def _handle_signal(self, signum: int, frame: Any) -> None:
        self._stopping.set()
        super()._handle_signal(signum, frame)


class _QuietConsumer(_StoppingConsumer):
    """A consumer that leaves signal handling to its host (uvicorn), which calls `Jobs.stop`."""

    def _set_signal_handlers(self) -> None:
        pass


def enqueue_after_commit(session: Session, task: Callable[..., Any], *args: Any) -> None:
    """Hand the job to the queue once its rows are committed. The row is the job: should the
    queue fail at that moment, the failure is logged and the sweeper sends it again later."""
    after_commit(session, lambda: _enqueue(task, args))


def _enqueue(task: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        task(*args)
    except Exception:
        log.exception("could not queue %s%r; the sweeper will send it again", task, args)


def _claim_period(db: Engine, name: str, period: timedelta) -> bool:
    """True for exactly one caller per period, across every process sharing the database."""
    now = utcnow()
    with unit_of_work(db) as session:
        moved = session.execute(
            update(Periodic)
            .where(col(Periodic.name) == name, col(Periodic.next_run_at) <= now)
            .values(next_run_at=now + period)
        )
        return moved.rowcount == 1  # type: ignore[attr-defined]


def reap_quarantine(db: Engine, folder: Path, older_than: timedelta = ORPHAN_AGE) -> list[Path]:
    """Delete uploads that no source and no resumable upload points to any more (their server
    or worker was killed mid-upload or mid-delete). Returns what was deleted."""
    if not folder.is_dir():
        return []
    with Session(db) as session:
        kept = [*session.exec(select(Source.upload_path)), *session.exec(select(ExportUpload.path))]
    owned = {Path(p).name for p in kept if p}
    cutoff = time.time() - older_than.total_seconds()
    reaped = []
    for path in folder.iterdir():
        try:
            stale = path.stat().st_mtime < cutoff
        except FileNotFoundError:  # deleted meanwhile by its scan
            continue
        if stale and path.name not in owned:
            remove_files([str(path)])
            reaped.append(path)
    if reaped:
        log.info("deleted %s orphaned uploads from the quarantine", len(reaped))
    return reaped
