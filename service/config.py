"""Settings from `PHOTO_REMOVAL_*` environment variables; built once at start-up and passed down."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.private_files import private_folder, write_private

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90`, `90s`, `15m`, `12h`, `3d`: a plain number is seconds."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 12h or 3d")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])


class Settings(BaseSettings):
    """Every setting of the service. README and API.md list them; a test checks they agree."""

    model_config = SettingsConfigDict(env_prefix="PHOTO_REMOVAL_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str = ""  # empty: SQLite in the data dir
    queue_url: str = ""  # empty: the SQLite queue in the data dir, consumed inside `serve`
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""  # empty: generated once into the data dir
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool | None = None  # None: STARTTLS when the relay offers it
    mail_from: str = "photo-removal@localhost"
    allow_private_fetch: bool = False
    bluesky_api: str = "https://public.api.bsky.app"
    flickr_api_key: str = ""  # Flickr profile links need one; without it they are refused kindly
    # Who may open an owner account: anyone, holders of an owner invitation, or no one; the
    # first account (the instance's admin) always may.
    signups: Literal["open", "invite", "closed"] = "invite"
    reminder_after: str = "3d,7d,14d"
    verify_every: str = "1d"
    max_upload_bytes: int = Field(default=20 * 1024**3, ge=1)
    invite_valid_days: int = Field(default=30, ge=1)
    # An accepted friend's link ends this long after their last visit or the last mail that
    # carried it (a checklist, a reminder).
    link_idle_days: int = Field(default=180, ge=1)
    scan_workers: int = Field(default=0, ge=0)  # 0: one per core
    queue_workers: int = Field(default=1, ge=1)  # jobs at once in one consumer
    scan_lease_seconds: int = Field(default=120, ge=1)  # a silent scan worker is presumed dead
    login_attempts_per_15min: int = Field(default=10, ge=1)
    # Comma-separated proxy addresses whose X-Forwarded-For is believed; empty: no one's is, so
    # a client cannot pick the address the log-in rate limit counts under.
    trusted_proxies: str = ""
    invitations_per_hour: int = Field(default=30, ge=1)
    registrations_per_hour: int = Field(default=10, ge=1)  # new accounts from one address

    @field_validator("reminder_after")
    @classmethod
    def _check_reminders(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                parse_duration(part)
        return value

    @field_validator("verify_every")
    @classmethod
    def _check_verify(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def reminder_offsets(self) -> list[timedelta]:
        return sorted(parse_duration(p) for p in self.reminder_after.split(",") if p.strip())

    @property
    def scan_lease(self) -> timedelta:
        return timedelta(seconds=self.scan_lease_seconds)

    @property
    def verify_interval(self) -> timedelta:
        return parse_duration(self.verify_every)

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'photo-removal.db').resolve()}"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def thumbnails_dir(self) -> Path:
        return self.data_dir / "thumbnails"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    def prepared(self) -> Settings:
        """Create the data folders and the secret key file; refuse a weak explicit key."""
        for folder in (self.data_dir, self.quarantine_dir, self.thumbnails_dir, self.outbox_dir):
            private_folder(folder)
        if self.secret_key:
            if len(self.secret_key) < 32:
                raise ValueError("PHOTO_REMOVAL_SECRET_KEY must be at least 32 characters long")
            return self
        key_file = self.data_dir / "secret.key"
        if not key_file.exists():
            write_private(key_file, secrets.token_urlsafe(48).encode())
        return self.model_copy(update={"secret_key": key_file.read_text().strip()})
