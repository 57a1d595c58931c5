"""Receiving a multipart upload straight to a file in quarantine, never holding it in memory."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.ingest.archives import archive_kind
from service.ingest.fields import safe_name
from service.private_files import open_private

NOT_A_FORM = "send the export as multipart/form-data in a field named file"
PARTS_AT_ONCE = 50  # the parts of one split export (Takeout makes 50 GB parts at most)


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    field_name: bytes = b""
    value: bytes = b""


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int


class _Receiver:
    """Parser callbacks: each `file` part goes to a file of its own on disk, chunk by chunk (a
    split export's parts arrive together)."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.part = _Part()
        self.header_field = b""
        self.received: list[ReceivedFile] = []
        self.size = 0  # of all the files together
        self._file: IO[bytes] | None = None

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self.part = _Part()
        self.header_field = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        key = self.header_field.lower()
        self.part.headers[key] = self.part.headers.get(key, b"") + data[start:end]

    def _header_end(self) -> None:
        self.header_field = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        self.part.field_name = options.get(b"name", b"")
        if self.part.field_name != b"file":
            return
        if len(self.received) >= PARTS_AT_ONCE:
            raise _TooMany
        raw = options.get(b"filename", b"upload").decode("utf-8", "replace")
        path = self.folder / f"upload-{secrets.token_hex(16)}"
        self.received.append(ReceivedFile(path=path, filename=safe_name(raw), size=0))
        self._file = open_private(path)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._file is None or self.part.field_name != b"file":
            return
        self.size += end - start
        self.received[-1].size += end - start
        if self.size > self.limit:
            raise _TooLarge
        self._file.write(data[start:end])

    def _end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._end()

    def discard(self) -> None:
        for received in self.received:
            received.path.unlink(missing_ok=True)


class _TooLarge(Exception):
    pass


class _TooMany(Exception):
    pass


async def receive_archive(request: Request, folder: Path, limit: int) -> list[ReceivedFile]:
    """Stream each multipart `file` field into `folder`: one export, or the parts of a split
    one. 413 past `limit` for them all, 415 if one is not an archive (none is then kept)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(413, _too_large(limit))
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise HTTPException(422, NOT_A_FORM)
    folder.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(folder, limit)
    parser = MultipartParser(options[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        return _checked(receiver.received)
    except _TooLarge:
        receiver.close()
        receiver.discard()
        raise HTTPException(413, _too_large(limit)) from None
    except _TooMany:
        receiver.close()
        receiver.discard()
        raise HTTPException(422, f"send at most {PARTS_AT_ONCE} files at once") from None
    except MultipartParseError:  # a broken form was a 500
        receiver.close()
        receiver.discard()
        raise HTTPException(422, NOT_A_FORM) from None
    except BaseException:
        receiver.close()
        receiver.discard()
        raise
    finally:
        receiver.close()


def _too_large(limit: int) -> str:
    return f"the file is larger than the limit of {limit // 2**20} MB"


def _checked(received: list[ReceivedFile]) -> list[ReceivedFile]:
    if not received:
        raise HTTPException(422, "no file was sent (expected a form field named file)")
    for file in received:
        with file.path.open("rb") as f:
            head = f.read(512)
        if archive_kind(head) is None:
            raise HTTPException(
                415,
                f"{file.filename} is not a ZIP or TAR archive; please upload the export file "
                "as downloaded",
            )
    return received
