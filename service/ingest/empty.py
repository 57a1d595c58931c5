"""What to tell a friend whose export held no photo: what the file held, and how to ask the
platform for a download that has the photos in it (a data-only download is the usual cause)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

from service.ingest.archives import ArchiveError, iter_archive

HOW_TO_GET_PHOTOS = (
    "Ask for a new download with your photos in it. Facebook and Instagram: choose “Download "
    "to device”, format JSON, date range “All time” and media quality “High”. Google Takeout: "
    "tick Google Photos. X, Mastodon and Flickr: their archive holds your media; any folder of "
    "photos works too, zipped."
)


def no_photo_found(parts: list[Path]) -> str:
    """The scan's message for an export (in one part or several) that held no photo, saying
    what it did hold."""
    kinds: Counter[str] = Counter()
    for part in parts:
        try:
            kinds.update(_kind(member.name) for member in iter_archive(part))
        except ArchiveError:
            continue
    total = sum(kinds.values())
    if not total:
        held = "This file held no files at all."
    else:
        listed = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common(3))
        more = " and others" if len(kinds) > 3 else ""
        files = f"{total} file{'s' if total != 1 else ''}"
        held = f"This file held {files} ({listed}{more}), and no photo."
    return f"{held} {HOW_TO_GET_PHOTOS}"


def _kind(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix[1:] if suffix else "without a type"
