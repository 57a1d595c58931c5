"""Byte streams under the archive reader: members read once, replays, guards against bombs."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import TYPE_CHECKING, Protocol

from service.ingest.errors import ArchiveError, PhotoReadError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from service.ingest.archives import ArchiveLimits

MiB = 1024 * 1024
CHUNK = MiB
_RATIO_FLOOR = MiB  # small members (headers, tiny blank images) compress oddly without being bombs
READ_ERRORS: tuple[type[Exception], ...] = (zipfile.BadZipFile, tarfile.TarError, zlib.error)
READ_ERRORS += (lzma.LZMAError, EOFError, OSError, ValueError, NotImplementedError, struct.error)

AS_DOWNLOADED = "please upload the export file exactly as you downloaded it."
DAMAGED = "This archive is damaged or incomplete; please download the export again and upload it."
BOMB = f"This archive unpacks to far more data than photos can, so it was refused; {AS_DOWNLOADED}"
_UNREADABLE = "This photo is damaged inside the archive and could not be read."
_GONE = "This photo can no longer be read because the archive has moved on to the next file."


class Stream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


Opener = Callable[[], AbstractContextManager[Stream]]


def refuse_oversized(size: int, limits: ArchiveLimits) -> None:
    """Raises PhotoReadError for a photo too large to hold in memory."""
    if size > limits.max_member_bytes:
        megabytes = limits.max_member_bytes // MiB
        raise PhotoReadError(f"This photo is larger than {megabytes} MB, so it was skipped.")


def check_ratio(size: int, packed: int, limits: ArchiveLimits) -> None:
    if size > _RATIO_FLOOR and size > limits.max_ratio * max(packed, 1):
        raise ArchiveError(BOMB)


@contextmanager
def _photo_errors() -> Iterator[None]:
    try:
        yield
    except (ArchiveError, PhotoReadError):
        raise
    except READ_ERRORS as error:
        raise PhotoReadError(_UNREADABLE) from error


class MemberStream:
    """One member read forward once: a few head bytes for sniffing, then the whole of it."""

    def __init__(self, size: int, opener: Opener, limits: ArchiveLimits) -> None:
        self._size, self._opener, self._limits = size, opener, limits
        self._stack = ExitStack()
        self._handle: Stream | None = None
        self._head = b""
        self._spent = False

    def _open(self) -> Stream:
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
            rest = read_up_to(self._open(), self._limits.max_member_bytes + 1 - len(self._head))
        self._spent = True  # the head bytes were handed out with the rest
        data = self._head + rest
        refuse_oversized(len(data), self._limits)
        return data

    def replay(self) -> AbstractContextManager[Stream]:
        """The member from its first byte, for reading it as a nested archive."""
        return nullcontext(Chain(self._head, self._open()))

    def drain(self) -> None:
        """Reads what is left, so that a streamed TAR can move on to its next member."""
        try:
            handle = self._handle or self._stack.enter_context(self._opener())
            while handle.read(CHUNK):
                pass
        except ArchiveError:
            raise
        except READ_ERRORS as error:
            raise ArchiveError(DAMAGED) from error

    def close(self) -> None:
        self._spent = True
        self._stack.close()


def read_up_to(stream: Stream, limit: int) -> bytes:
    # zipfile inflates as much as one read() asks for before trimming to the declared size,
    # so a header that understates the size must meet small reads, not one huge one.
    parts, total = [], 0
    while total < limit and (chunk := stream.read(min(CHUNK, limit - total))):
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


class Reader(io.RawIOBase):
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


class Chain(Reader):
    """Bytes already read from a stream, followed by the rest of that stream."""

    def __init__(self, first: bytes, rest: Stream) -> None:
        super().__init__()
        self._first, self._rest = first, rest

    def _take(self, n: int) -> bytes:
        data, self._first = self._first[:n], self._first[n:]
        return data + self._rest.read(n - len(data)) if len(data) < n else data


class Counting(Reader):
    """Counts the compressed bytes a decompressor has consumed."""

    def __init__(self, raw: Stream) -> None:
        super().__init__()
        self._raw, self.count = raw, 0

    def _take(self, n: int) -> bytes:
        data = self._raw.read(n)
        self.count += len(data)
        return data


class Guard(Reader):
    """Decompressed TAR bytes, refused when they outgrow the compressed bytes behind them."""

    def __init__(self, source: Stream, packed: Counting, limits: ArchiveLimits) -> None:
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
        check_ratio(spent, self._packed.count - self._in_mark, self._limits)
        if self._budget is not None and spent > self._budget:
            raise ArchiveError(DAMAGED)
        return data


class Rewindable(Reader):
    """Random access to a forward-only stream for zipfile: seeking back reopens the stream,
    and the tail, where a ZIP keeps its directory, is held in memory until it has been parsed."""

    def __init__(self, opener: Opener, size: int, tail: int) -> None:
        super().__init__()
        self._opener, self._size = opener, size
        self._stack = ExitStack()
        self._stream: Stream | None = None
        self._at = self._pos = 0
        self._tail_start = max(0, size - tail)
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
            skipped = len(self._stream.read(min(CHUNK, pos - self._at)))
            if not skipped:
                return b""
            self._at += skipped
        data = self._stream.read(n)
        self._at += len(data)
        return data


def decompressing(packed: io.BufferedReader) -> Stream:
    # Decompressing here rather than in tarfile ("r|*") lets Guard see every inflated byte.
    magic = packed.peek(6)[:6]
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=packed, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(packed)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(packed)
    return packed
