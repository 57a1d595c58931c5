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
