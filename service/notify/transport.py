"""Where mail goes: an SMTP relay (aiosmtplib) or `.eml` files in the outbox folder."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from service.config import Settings


class TemporaryFailure(Exception):
    """Worth retrying later: the relay is down or said 4xx."""


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class OutboxTransport:
    """For a set-up without SMTP: each mail is a file someone can open."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").replace("@", "_").replace("/", "_")
        path = self.folder / f"{name}.eml"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(bytes(message))
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
