"""The one entry point for uploaded exports: index every part, recognise the layout, then give
its photos with their provenance, in archive order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from service.ingest.archives import ArchiveLimits, ArchiveMember
from service.ingest.errors import PhotoReadError
from service.ingest.exports import (
    facebook,
    flickr_export,
    google_photos,
    instagram,
    mastodon_archive,
    x_archive,
)
from service.ingest.exports.index import ExportIndex, Plan
from service.ingest.items import PhotoItem
from service.ingest.sources import is_hidden, is_photo_member, iter_members, iter_photos
from service.ingest.streams import MiB

DOCUMENT_BYTES = 64 * MiB  # an index file larger than this is not read (its photos still are)
DOCUMENTS_TOTAL = 1024 * MiB  # all index files of one export held in memory together


class Layout(Protocol):
    """A module that reads one export layout."""

    def detect(self, index: ExportIndex) -> bool: ...
    def wants(self, name: str) -> bool: ...
    def plan(self, index: ExportIndex) -> Plan: ...


# Most specific first: an X or Mastodon archive is unmistakable, Google's sidecars are not.
LAYOUTS: tuple[Layout, ...] = (
    x_archive,
    mastodon_archive,
    flickr_export,
    instagram,
    facebook,
    google_photos,
)


def iter_export(paths: Sequence[Path], limits: ArchiveLimits | None = None) -> Iterator[PhotoItem]:
    """The photos of an export uploaded as one or several parts (ZIP, TAR, TAR.GZ, or a folder),
    lazily and in archive order, each with the provenance its layout records.

    Every part is indexed first (reading only small JSON files) so that JSON in one part
    describes media in another. An unknown layout gives the photos as a folder of photos
    (platform `other`). Raises ArchiveError for a refused archive and ExportError (one) for an
    export that cannot be read as such (e.g. made in HTML); `read()` raises PhotoReadError.
    """
    limits = limits or ArchiveLimits()
    index = _index(paths, limits)
    layout = next((layout for layout in LAYOUTS if layout.detect(index)), None)
    if layout is None:
        for path in paths:
            yield from iter_photos(path, limits)
        return
    plan = layout.plan(index)
    del index  # its JSON is not needed while the media are read
    yield from _photos(paths, limits, plan)


def _index(paths: Sequence[Path], limits: ArchiveLimits) -> ExportIndex:
    names: list[str] = []
    documents: dict[str, bytes] = {}
    total = 0
    for path in paths:
        for member in iter_members(path, limits):
            names.append(member.name)
            if _is_wanted(member) and total + member.size <= DOCUMENTS_TOTAL:
                try:
                    data = member.read()
                except PhotoReadError:
                    continue  # a damaged index file: its photos are still given, undescribed
                documents[member.name] = data
                total += len(data)
    return ExportIndex(names, documents)


def _is_wanted(member: ArchiveMember) -> bool:
    name = member.name
    if not name.endswith((".json", ".js")) or member.size > DOCUMENT_BYTES or is_hidden(name):
        return False
    if "messages" in name.split("/")[:-1]:
        return False  # private conversations: no layout reads them, and they can be large
    return any(layout.wants(name) for layout in LAYOUTS)


def _photos(paths: Sequence[Path], limits: ArchiveLimits, plan: Plan) -> Iterator[PhotoItem]:
    given: set[str] = set()
    for path in paths:
        for member in iter_members(path, limits):
            provenance = plan.provenance_of(member.name)
            if provenance is None or member.name in given or not is_photo_member(member):
                continue
            given.add(member.name)  # a file in two uploaded parts is one photo
            yield provenance.item(member.name, member.read)
