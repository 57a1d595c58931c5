"""Where mail goes: an SMTP relay (aiosmtplib) or `.eml` files in the outbox folder."""

from __future__ import annotations

import asyncio
import os
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from service.config import Settings
from service.private_files import private_folder, write_private


class TemporaryFailure(Exception):
    """Worth retrying later: the relay is down or said 4xx."""


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class OutboxTransport:
    """For a set-up without SMTP: each mail is a file someone can open."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        private_folder(self.folder)
        # Named by the Message-ID's digest (see mail.outbox_file): one file per mail, however often
        # it is sent, and one the service can find again to delete.
        digest = str(message["Message-ID"]).strip("<>").partition("@")[0]
        path = self.folder / f"{os.path.basename(digest)}.eml"
        temporary = path.with_suffix(".tmp")
        write_private(temporary, bytes(message))
        temporary.replace(path)  # a reader never sees half a mail


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            asyncio.run(
                aiosmtplib.send(
                    message,
                    hostname=s.smtp_host,
                    port=s.smtp_port,
                    username=s.smtp_username or None,
                    password=s.smtp_password or None,
                    start_tls=s.smtp_starttls,
                    timeout=30,
                )
            )
        except (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
            OSError,
        ) as e:
            raise TemporaryFailure(str(e)) from e
        except aiosmtplib.SMTPResponseException as e:
            if 400 <= e.code < 500:
                raise TemporaryFailure(str(e)) from e
            raise


def make_transport(settings: Settings) -> Transport:
    if settings.smtp_host:
        return SmtpTransport(settings)
    return OutboxTransport(settings.outbox_dir)
