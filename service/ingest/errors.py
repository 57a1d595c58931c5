"""What can go wrong while reading a friend's photos; every message is written for that friend."""

from __future__ import annotations


class ArchiveError(ValueError):
    """The whole archive is refused; the message is written for the person who uploaded it."""


class PhotoReadError(Exception):
    """One member could not be read; the rest of the archive is still usable."""


class ExportError(ArchiveError):
    """An export is refused for what it is (e.g. requested as HTML), not for being damaged."""


class UnreadableLink(ValueError):
    """A profile link that cannot be read; the message says why and what to share instead."""


def html_export(platform: str) -> ExportError:
    """Meta exports can be requested as HTML, which cannot be read: say how to ask for JSON."""
    return ExportError(
        f"This {platform} export was made in HTML format, which we cannot read; please request it "
        "again with Format set to JSON (Accounts Center > Your information and permissions > "
        "Download your information) and upload that one."
    )
