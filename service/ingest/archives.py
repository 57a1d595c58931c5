"""Reading ZIP and TAR exports in place, one member at a time, refusing hostile archives."""

from __future__ import annotations

import io
import re
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from service.ingest.errors import ArchiveError, PhotoReadError
from service.ingest.streams import (
    AS_DOWNLOADED,
    BOMB,
    DAMAGED,
    READ_ERRORS,
    Counting,
    Guard,
    MemberStream,
    MiB,
    Opener,
    Rewindable,
    Stream,
    check_ratio,
    decompressing,
    refuse_oversized,
)

__all__ = [
    "ArchiveError",
    "ArchiveLimits",
    "ArchiveMember",
    "PhotoReadError",
    "archive_kind",
    "is_archive_name",
    "iter_archive",
    "refuse_oversized",
]

_TAR_HEADER_BYTES = 4 * MiB  # tarfile holds a whole PAX or long-name header in memory
_ZIP_ENTRY_BYTES = 1024  # generous directory bytes per member: caps memory before zipfile parses it
_ZIP_TAIL = 64 * MiB  # keeps a nested ZIP's directory in memory so it is not decompressed again
_EOCD_SEARCH = 22 + 65535 + 20 + 56  # end record, longest comment, ZIP64 locator and record
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")
_DRIVE = re.compile(r"^[A-Za-z]:")

_NOT_ARCHIVE = f"This file is not a ZIP or TAR archive; {AS_DOWNLOADED}"
_OUTSIDE = f"This archive has files pointing outside of it, which exports never do; {AS_DOWNLOADED}"
_SPECIAL = f"This archive has links or special files in it, which exports never do; {AS_DOWNLOADED}"
_ENCRYPTED = "This archive is protected by a password; please export it again without a password."


@dataclass(frozen=True)
class ArchiveLimits:
    """How much an uploaded archive may hold before it is refused or a member skipped."""

    max_members: int = 200_000
    max_member_bytes: int = 200 * MiB
    max_total_bytes: int = 64 * 1024 * MiB
    max_ratio: int = 200
    max_nesting: int = 1
    max_path_depth: int = 64


@dataclass(frozen=True)
class ArchiveMember:
    """One file of an archive, named by its relative path (a nested archive's path, then its own).

    `head(n)` gives the first bytes for sniffing and `read()` the whole file, capped at
    `max_member_bytes`; both raise PhotoReadError and work only until the next member is requested.
    """

    name: str
    size: int
    read: Callable[[], bytes] = field(repr=False, compare=False)
    head: Callable[[int], bytes] = field(repr=False, compare=False)


def archive_kind(head: bytes) -> Literal["zip", "tar"] | None:
    """Which archive reader the first 512 bytes of a file call for, if any."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    compressed = head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00"
    return "tar" if compressed or head[257:262] == b"ustar" else None


def is_archive_name(name: str) -> bool:
    """True when a member's name says it is an archive to open in place."""
    return name.lower().endswith(_ARCHIVE_SUFFIXES)


def iter_archive(path: Path, limits: ArchiveLimits | None = None) -> Iterator[ArchiveMember]:
    """Every file in the ZIP or TAR at `path`, lazily and in archive order, never extracted.

    A ZIP is checked whole before its first member; a TAR is a stream, so ArchiveError may come
    after some members were given.
    """
    tally = _Tally(limits or ArchiveLimits())
    with path.open("rb") as probe:
        kind = archive_kind(probe.read(512))
    if kind is None:
        raise ArchiveError(_NOT_ARCHIVE)
    if kind == "tar":
        yield from _iter_tar(lambda: path.open("rb"), "", 0, tally)
        return
    with path.open("rb") as fileobj:
        yield from _iter_zip(fileobj, "", 0, tally)


@dataclass
class _Tally:
    """Counts shared by an archive and the archives nested in it."""

    limits: ArchiveLimits
    members: int = 0
    total_bytes: int = 0

    def count(self, members: int) -> None:
        self.members += members
        if self.members > self.limits.max_members:
            raise ArchiveError(_too_many(self.limits))

    def add_bytes(self, size: int) -> None:
        self.total_bytes += size
        if self.total_bytes > self.limits.max_total_bytes:
            gigabytes = self.limits.max_total_bytes // (1024 * MiB)
            raise ArchiveError(
                f"This archive unpacks to more than {gigabytes} GB, which is more than we can "
                "scan; please split it into smaller archives."
            )


def _too_many(limits: ArchiveLimits) -> str:
    return (
        f"This archive holds more than {limits.max_members:,} files, which is more than we can "
        "scan; please split it into smaller archives."
    )


def _normalise(raw: str, prefix: str, limits: ArchiveLimits) -> str | None:
    """A member's safe relative path under `prefix`, or None for the archive's root itself."""
    try:
        name = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        name = raw.encode("utf-8", "replace").decode("utf-8")
    name = name.replace("\\", "/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or _DRIVE.match(name) or ".." in parts:
        raise ArchiveError(_OUTSIDE)
    if len(parts) > limits.max_path_depth:
        raise ArchiveError(
            f"This archive has folders more than {limits.max_path_depth} levels deep, which real "
            f"exports never do; {AS_DOWNLOADED}"
        )
    return "/".join([prefix, *parts] if prefix else parts) if parts else None


def _iter_kind(
    kind: Literal["zip", "tar"], opener: Opener, size: int, prefix: str, depth: int, tally: _Tally
) -> Iterator[ArchiveMember]:
    if kind == "tar":
        yield from _iter_tar(opener, prefix, depth, tally)
        return
    with Rewindable(opener, size, _ZIP_TAIL) as fileobj:
        yield from _iter_zip(fileobj, prefix, depth, tally)


def _iter_nested(
    member: MemberStream, name: str, size: int, reopen: Opener, depth: int, tally: _Tally
) -> Iterator[ArchiveMember]:
    """The members of an archive inside the archive, read in place from the outer one."""
    try:
        kind = archive_kind(member.head(512))
    except PhotoReadError as error:
        raise ArchiveError(DAMAGED) from error
    if kind is None:  # only named like an archive: an ordinary member
        yield ArchiveMember(name, size, member.read, member.head)
        return
    if depth >= tally.limits.max_nesting:
        raise ArchiveError(
            "This archive has archives inside archives more than "
            f"{tally.limits.max_nesting} deep; please upload the inner archives separately."
        )
    # The live stream first; a fresh one each time zipfile seeks back.
    openers: list[Opener] = [member.replay]

    def opener() -> AbstractContextManager[Stream]:
        return (openers.pop() if openers else reopen)()

    yield from _iter_kind(kind, opener, size, name, depth + 1, tally)


def _iter_zip(
    fileobj: io.BufferedReader | Rewindable, prefix: str, depth: int, tally: _Tally
) -> Iterator[ArchiveMember]:
    _check_directory_size(fileobj, tally.limits)
    try:
        archive = zipfile.ZipFile(fileobj)
    except READ_ERRORS as error:
        raise ArchiveError(DAMAGED) from error
    with archive:
        if isinstance(fileobj, Rewindable):
            fileobj.forget_tail()
        for name, info in _checked_zip_entries(archive, prefix, tally):
            reopen = _zip_opener(archive, info)
            member = MemberStream(info.file_size, reopen, tally.limits)
            try:
                if is_archive_name(name):
                    yield from _iter_nested(member, name, info.file_size, reopen, depth, tally)
                else:
                    yield ArchiveMember(name, info.file_size, member.read, member.head)
            finally:
                member.close()


def _zip_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Opener:
    return lambda: archive.open(info)


def _check_directory_size(fileobj: io.BufferedReader | Rewindable, limits: ArchiveLimits) -> None:
    """Refuses a ZIP whose directory would not fit in memory, before zipfile parses all of it."""
    end = fileobj.seek(0, 2)
    fileobj.seek(max(0, end - _EOCD_SEARCH))
    tail = fileobj.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise ArchiveError(DAMAGED)
    entries, directory = struct.unpack_from("<HI", tail, at + 10)
    zip64 = tail.rfind(b"PK\x06\x06", 0, at)
    if (entries == 0xFFFF or directory == 0xFFFFFFFF) and 0 <= zip64 <= len(tail) - 48:
        entries, directory = struct.unpack_from("<QQ", tail, zip64 + 32)
    if entries > limits.max_members or directory > limits.max_members * _ZIP_ENTRY_BYTES:
        raise ArchiveError(_too_many(limits))


def _checked_zip_entries(
    archive: zipfile.ZipFile, prefix: str, tally: _Tally
) -> list[tuple[str, zipfile.ZipInfo]]:
    """The files of a ZIP in the order they are stored, once every entry has been checked."""
    infos = sorted(archive.infolist(), key=lambda info: info.header_offset)
    tally.count(len(infos))
    entries, stored_end = [], 0
    for info in infos:
        if info.header_offset < stored_end:  # overlapping entries are how the worst bombs work
            raise ArchiveError(BOMB)
        stored_end = info.header_offset + 30 + info.compress_size
        name = _normalise(info.filename, prefix, tally.limits)
        if info.flag_bits & 0x1:
            raise ArchiveError(_ENCRYPTED)
        if stat.S_IFMT(info.external_attr >> 16) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(_SPECIAL)
        if name is None or info.is_dir():
            continue
        check_ratio(info.file_size, info.compress_size, tally.limits)
        if not is_archive_name(name):
            tally.add_bytes(info.file_size)
        entries.append((name, info))
    return entries


class _TarStream:
    """A TAR read once from start to end, every decompressed byte passing through a Guard."""

    def __init__(self, raw: Stream, limits: ArchiveLimits) -> None:
        counting = Counting(raw)
        self._guard = Guard(decompressing(io.BufferedReader(counting)), counting, limits)
        self._tar: tarfile.TarFile | None = None

    def __enter__(self) -> _TarStream:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tar is not None:
            self._tar.close()

    def next(self, *, header_budget: int | None = _TAR_HEADER_BYTES) -> tarfile.TarInfo | None:
        self._guard.expect(header_budget=header_budget)
        first = self._tar is None
        try:
            if self._tar is None:
                self._tar = tarfile.open(  # noqa: SIM115 (closed by __exit__)
                    fileobj=self._guard, mode="r|", encoding="utf-8", errors="surrogateescape"
                )
            info = self._tar.next()
        except ArchiveError:
            raise
        except READ_ERRORS as error:
            raise ArchiveError(_NOT_ARCHIVE if first else DAMAGED) from error
        # A stream needs no index of the members it has passed, and 200 000 of them cost memory.
        self._tar.members.clear()  # type: ignore[attr-defined]
        self._guard.expect(header_budget=None)
        return info

    def extract(self, info: tarfile.TarInfo) -> AbstractContextManager[Stream]:
        handle = self._tar.extractfile(info) if self._tar is not None else None
        if handle is None:
            raise ArchiveError(_SPECIAL)
        return handle


def _iter_tar(opener: Opener, prefix: str, depth: int, tally: _Tally) -> Iterator[ArchiveMember]:
    with opener() as raw, _TarStream(raw, tally.limits) as stream:
        index = -1
        while (info := stream.next()) is not None:
            index += 1
            tally.count(1)
            name = _normalise(info.name, prefix, tally.limits)
            if name is None or info.isdir():
                continue
            if not info.isreg():  # symlinks, hard links, devices and fifos
                raise ArchiveError(_SPECIAL)
            if not is_archive_name(name):
                tally.add_bytes(info.size)
            member = MemberStream(info.size, _tar_opener(stream, info), tally.limits)
            try:
                if is_archive_name(name):
                    reopen = _tar_reopener(opener, index, tally.limits)
                    yield from _iter_nested(member, name, info.size, reopen, depth, tally)
                else:
                    yield ArchiveMember(name, info.size, member.read, member.head)
                member.drain()
            finally:
                member.close()


def _tar_opener(stream: _TarStream, info: tarfile.TarInfo) -> Opener:
    return lambda: stream.extract(info)


def _tar_reopener(source: Opener, index: int, limits: ArchiveLimits) -> Opener:
    """Opens the index-th member of a TAR afresh, for a ZIP inside it that zipfile reads twice."""

    @contextmanager
    def reopen() -> Iterator[Stream]:
        with source() as raw, _TarStream(raw, limits) as stream:
            for _ in range(index):
                if stream.next(header_budget=None) is None:
                    raise ArchiveError(DAMAGED)
            info = stream.next(header_budget=None)
            if info is None:
                raise ArchiveError(DAMAGED)
            with stream.extract(info) as handle:
                yield handle

    return reopen
