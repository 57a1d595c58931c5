"""Settings: every one documented, durations parsed, weak keys refused, the key kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from service.config import Settings, parse_duration

README = Path(__file__).resolve().parents[1] / "README.md"


def test_it_documents_every_setting_in_the_readme() -> None:
    text = README.read_text()
    for name in Settings.model_fields:
        variable = f"PHOTO_REMOVAL_{name.upper()}"
        short = f"_{name.upper().removeprefix('SMTP_')}" if name.startswith("smtp_") else None
        assert variable in text or (short and short in text), f"{variable} is not in README.md"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("30s", 30), ("15m", 900), ("12h", 43200), ("3d", 259200), ("1.5h", 5400)],
)
def test_it_reads_durations_in_every_unit(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_it_refuses_a_bad_reminder_schedule() -> None:
    with pytest.raises(ValueError, match="duration"):
        Settings(reminder_after="3 days")


def test_it_sorts_reminder_offsets() -> None:
    offsets = Settings(reminder_after="7d, 10s,3d").reminder_offsets
    assert offsets == [timedelta(seconds=10), timedelta(days=3), timedelta(days=7)]


def test_it_refuses_a_short_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 characters"):
        Settings(data_dir=tmp_path, secret_key="short").prepared()


def test_it_generates_the_secret_key_once(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).prepared().secret_key
    again = Settings(data_dir=tmp_path).prepared().secret_key
    assert first == again and len(first) >= 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
