"""Reading ZIP and TAR exports in place, one member at a time, refusing hostile archives."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MiB = 1024 * 1024
_CHUNK = MiB
_RATIO_FLOOR = MiB  # small members (headers, tiny blank images) compress oddly without being bombs
_TAR_HEADER_BYTES = 4 * MiB  # tarfile holds a whole PAX or long-name header in memory
_ZIP_ENTRY_BYTES = 1024  # generous directory bytes per member: caps memory before zipfile parses it
_ZIP_TAIL = 64 * MiB  # keeps a nested ZIP's directory in memory so it is not decompressed again
_EOCD_SEARCH = 22 + 65535 + 20 + 56  # end record, longest comment, ZIP64 locator and record
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")
_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_ERRORS: tuple[type[Exception], ...] = (zipfile.BadZipFile, tarfile.TarError, zlib.error)
_READ_ERRORS += (lzma.LZMAError, EOFError, OSError, ValueError, NotImplementedError, struct.error)

_AS_DOWNLOADED = "please upload the export file exactly as you downloaded it."
_NOT_ARCHIVE = f"This file is not a ZIP or TAR archive; {_AS_DOWNLOADED}"
_DAMAGED = "This archive is damaged or incomplete; please download the export again and upload it."
_OUTSIDE = (
    f"This archive has files pointing outside of it, which exports never do; {_AS_DOWNLOADED}"
)
_SPECIAL = (
    f"This archive has links or special files in it, which exports never do; {_AS_DOWNLOADED}"
)
_ENCRYPTED = "This archive is protected by a password; please export it again without a password."
_BOMB = (
    f"This archive unpacks to far more data than photos can, so it was refused; {_AS_DOWNLOADED}"
)
_UNREADABLE = "This photo is damaged inside the archive and could not be read."
_GONE = "This photo can no longer be read because the archive has moved on to the next file."


class ArchiveError(ValueError):
    """The whole archive is refused; the message is written for the person who uploaded it."""


class PhotoReadError(Exception):
    """One member could not be read; the rest of the archive is still usable."""


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


class _Stream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


Opener = Callable[[], AbstractContextManager[_Stream]]


def archive_kind(head: bytes) -> Literal["zip", "tar"] | None:
    """Which archive reader the first 512 bytes of a file call for, if any."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    compressed = head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00"
    return "tar" if compressed or head[257:262] == b"ustar" else None


def is_archive_name(name: str) -> bool:
    """True when a member's name says it is an archive to open in place."""
    return name.lower().endswith(_ARCHIVE_SUFFIXES)


def refuse_oversized(size: int, limits: ArchiveLimits) -> None:
    """Raises PhotoReadError for a photo too large to hold in memory."""
    if size > limits.max_member_bytes:
        megabytes = limits.max_member_bytes // MiB
        raise PhotoReadError(f"This photo is larger than {megabytes} MB, so it was skipped.")


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
            f"exports never do; {_AS_DOWNLOADED}"
        )
    return "/".join([prefix, *parts] if prefix else parts) if parts else None


def _check_ratio(size: int, packed: int, limits: ArchiveLimits) -> None:
    if size > _RATIO_FLOOR and size > limits.max_ratio * max(packed, 1):
        raise ArchiveError(_BOMB)


@contextmanager
def _photo_errors() -> Iterator[None]:
    try:
        yield
    except (ArchiveError, PhotoReadError):
        raise
    except _READ_ERRORS as error:
        raise PhotoReadError(_UNREADABLE) from error


class _Member:
    """One member read forward once: a few head bytes for sniffing, then the whole of it."""

    def __init__(self, size: int, opener: Opener, limits: ArchiveLimits) -> None:
        self._size, self._opener, self._limits = size, opener, limits
        self._stack = ExitStack()
        self._handle: _Stream | None = None
        self._head = b""
        self._spent = False

    def _open(self) -> _Stream:
        if self._spent:
            raise PhotoReadError(_GONE)
        if self._handle is None:
            self._handle = self._stack.enter_context(self._opener())
        return self._handle

    def head(self, n: int) -> bytes:
        with _photo_errors():
            handle = self._open()
            if len(self._head) < n:
                self._head += handle.read(n - len(self._head))
        return self._head[:n]

    def read(self) -> bytes:
        refuse_oversized(self._size, self._limits)
        with _photo_errors():
            rest = _read_up_to(self._open(), self._limits.max_member_bytes + 1 - len(self._head))
        self._spent = True  # the head bytes were handed out with the rest
        data = self._head + rest
        refuse_oversized(len(data), self._limits)
        return data

    def replay(self) -> AbstractContextManager[_Stream]:
        """The member from its first byte, for reading it as a nested archive."""
        return nullcontext(_Chain(self._head, self._open()))

    def drain(self) -> None:
        """Reads what is left, so that a streamed TAR can move on to its next member."""
        try:
            handle = self._handle or self._stack.enter_context(self._opener())
            while handle.read(_CHUNK):
                pass
        except ArchiveError:
            raise
        except _READ_ERRORS as error:
            raise ArchiveError(_DAMAGED) from error

    def close(self) -> None:
        self._spent = True
        self._stack.close()


def _read_up_to(stream: _Stream, limit: int) -> bytes:
    # zipfile inflates as much as one read() asks for before trimming to the declared size,
    # so a header that understates the size must meet small reads, not one huge one.
    parts, total = [], 0
    while total < limit and (chunk := stream.read(min(_CHUNK, limit - total))):
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


class _Reader(io.RawIOBase):
    """A raw binary stream defined by one method, `_take(n)`, giving at most n bytes."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._take(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int = -1, /) -> bytes:
        return super().read(size) or b""

    def _take(self, n: int) -> bytes:
        raise NotImplementedError


class _Chain(_Reader):
    """Bytes already read from a stream, followed by the rest of that stream."""

    def __init__(self, first: bytes, rest: _Stream) -> None:
        super().__init__()
        self._first, self._rest = first, rest

    def _take(self, n: int) -> bytes:
        data, self._first = self._first[:n], self._first[n:]
        return data + self._rest.read(n - len(data)) if len(data) < n else data


class _Counting(_Reader):
    """Counts the compressed bytes a decompressor has consumed."""

    def __init__(self, raw: _Stream) -> None:
        super().__init__()
        self._raw, self.count = raw, 0

    def _take(self, n: int) -> bytes:
        data = self._raw.read(n)
        self.count += len(data)
        return data


class _Guard(_Reader):
    """Decompressed TAR bytes, refused when they outgrow the compressed bytes behind them."""

    def __init__(self, source: _Stream, packed: _Counting, limits: ArchiveLimits) -> None:
        super().__init__()
        self._source, self._packed, self._limits = source, packed, limits
        self._out = self._out_mark = self._in_mark = 0
        self._budget: int | None = None

    def expect(self, *, header_budget: int | None) -> None:
        """Starts a new span (a header or a member) for the ratio and the header budget."""
        self._out_mark, self._in_mark, self._budget = self._out, self._packed.count, header_budget

    def _take(self, n: int) -> bytes:
        data = self._source.read(n)
        self._out += len(data)
        spent = self._out - self._out_mark
        _check_ratio(spent, self._packed.count - self._in_mark, self._limits)
        if self._budget is not None and spent > self._budget:
            raise ArchiveError(_DAMAGED)
        return data


class _Rewindable(_Reader):
    """Random access to a forward-only stream for zipfile: seeking back reopens the stream,
    and the tail, where a ZIP keeps its directory, is held in memory until it has been parsed."""

    def __init__(self, opener: Opener, size: int) -> None:
        super().__init__()
        self._opener, self._size = opener, size
        self._stack = ExitStack()
        self._stream: _Stream | None = None
        self._at = self._pos = 0
        self._tail_start = max(0, size - _ZIP_TAIL)
        self._tail: bytes | None = None
        self._keep_tail = True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0, /) -> int:
        self._pos = max(0, (0, self._pos, self._size)[whence] + offset)
        return self._pos

    def forget_tail(self) -> None:
        self._tail, self._keep_tail = None, False

    def close(self) -> None:
        self._stack.close()
        super().close()

    def _take(self, n: int) -> bytes:
        n = min(n, self._size - self._pos)
        if n <= 0:
            return b""
        if self._keep_tail and self._pos >= self._tail_start:
            if self._tail is None:
                self._tail = self._forward(self._tail_start, self._size - self._tail_start)
            start = self._pos - self._tail_start
            data = self._tail[start : start + n]
        else:
            data = self._forward(self._pos, n)
        self._pos += len(data)
        return data

    def _forward(self, pos: int, n: int) -> bytes:
        if self._stream is None or self._at > pos:
            self._stack.close()
            self._stream, self._at = self._stack.enter_context(self._opener()), 0
        while self._at < pos:
            skipped = len(self._stream.read(min(_CHUNK, pos - self._at)))
            if not skipped:
                return b""
            self._at += skipped
        data = self._stream.read(n)
        self._at += len(data)
        return data


def _iter_kind(
    kind: Literal["zip", "tar"], opener: Opener, size: int, prefix: str, depth: int, tally: _Tally
) -> Iterator[ArchiveMember]:
    if kind == "tar":
        yield from _iter_tar(opener, prefix, depth, tally)
        return
    with _Rewindable(opener, size) as fileobj:
        yield from _iter_zip(fileobj, prefix, depth, tally)


def _iter_nested(
    member: _Member, name: str, size: int, reopen: Opener, depth: int, tally: _Tally
) -> Iterator[ArchiveMember]:
    """The members of an archive inside the archive, read in place from the outer one."""
    try:
        kind = archive_kind(member.head(512))
    except PhotoReadError as error:
        raise ArchiveError(_DAMAGED) from error
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

    def opener() -> AbstractContextManager[_Stream]:
        return (openers.pop() if openers else reopen)()

    yield from _iter_kind(kind, opener, size, name, depth + 1, tally)


def _iter_zip(
    fileobj: io.BufferedReader | _Rewindable, prefix: str, depth: int, tally: _Tally
) -> Iterator[ArchiveMember]:
    _check_directory_size(fileobj, tally.limits)
    try:
        archive = zipfile.ZipFile(fileobj)
    except _READ_ERRORS as error:
        raise ArchiveError(_DAMAGED) from error
    with archive:
        if isinstance(fileobj, _Rewindable):
            fileobj.forget_tail()
        for name, info in _checked_zip_entries(archive, prefix, tally):
            reopen = _zip_opener(archive, info)
            member = _Member(info.file_size, reopen, tally.limits)
            try:
                if is_archive_name(name):
                    yield from _iter_nested(member, name, info.file_size, reopen, depth, tally)
                else:
                    yield ArchiveMember(name, info.file_size, member.read, member.head)
            finally:
                member.close()


def _zip_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Opener:
    return lambda: archive.open(info)


def _check_directory_size(fileobj: io.BufferedReader | _Rewindable, limits: ArchiveLimits) -> None:
    """Refuses a ZIP whose directory would not fit in memory, before zipfile parses all of it."""
    end = fileobj.seek(0, 2)
    fileobj.seek(max(0, end - _EOCD_SEARCH))
    tail = fileobj.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise ArchiveError(_DAMAGED)
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
            raise ArchiveError(_BOMB)
        stored_end = info.header_offset + 30 + info.compress_size
        name = _normalise(info.filename, prefix, tally.limits)
        if info.flag_bits & 0x1:
            raise ArchiveError(_ENCRYPTED)
        if stat.S_IFMT(info.external_attr >> 16) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(_SPECIAL)
        if name is None or info.is_dir():
            continue
        _check_ratio(info.file_size, info.compress_size, tally.limits)
        if not is_archive_name(name):
            tally.add_bytes(info.file_size)
        entries.append((name, info))
    return entries


class _TarStream:
    """A TAR read once from start to end, every decompressed byte passing through a _Guard."""

    def __init__(self, raw: _Stream, limits: ArchiveLimits) -> None:
        counting = _Counting(raw)
        self._guard = _Guard(_decompressing(io.BufferedReader(counting)), counting, limits)
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
        except _READ_ERRORS as error:
            raise ArchiveError(_NOT_ARCHIVE if first else _DAMAGED) from error
        # A stream needs no index of the members it has passed, and 200 000 of them cost memory.
        self._tar.members.clear()  # type: ignore[attr-defined]
        self._guard.expect(header_budget=None)
        return info

    def extract(self, info: tarfile.TarInfo) -> AbstractContextManager[_Stream]:
        handle = self._tar.extractfile(info) if self._tar is not None else None
        if handle is None:
            raise ArchiveError(_SPECIAL)
        return handle


def _decompressing(packed: io.BufferedReader) -> _Stream:
    # Decompressing here rather than in tarfile ("r|*") lets _Guard see every inflated byte.
    magic = packed.peek(6)[:6]
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=packed, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(packed)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(packed)
    return packed


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
            member = _Member(info.size, _tar_opener(stream, info), tally.limits)
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
    def reopen() -> Iterator[_Stream]:
        with source() as raw, _TarStream(raw, limits) as stream:
            for _ in range(index):
                if stream.next(header_budget=None) is None:
                    raise ArchiveError(_DAMAGED)
            info = stream.next(header_budget=None)
            if info is None:
                raise ArchiveError(_DAMAGED)
            with stream.extract(info) as handle:
                yield handle

    return reopen
