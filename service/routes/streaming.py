"""Receiving a multipart upload straight to a file in quarantine, never holding it in memory."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.ingest.archives import archive_kind
from service.private_files import open_private

NOT_A_FORM = "send the export as multipart/form-data in a field named file"


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
    """Parser callbacks: the `file` part goes to disk, chunk by chunk."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit = path, limit
        self.part = _Part()
        self.header_field = b""
        self.filename = ""
        self.size = 0
        self._file = None
        self.found = False

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
        if self.part.field_name == b"file" and not self.found:
            self.found = True
            raw = options.get(b"filename", b"upload").decode("utf-8", "replace")
            self.filename = os.path.basename(raw.replace("\\", "/"))[:200] or "upload"
            self._file = open_private(self.path)  # type: ignore[assignment]

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._file is None or self.part.field_name != b"file":
            return
        self.size += end - start
        if self.size > self.limit:
            raise _TooLarge
        self._file.write(data[start:end])

    def _end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._end()


class _TooLarge(Exception):
    pass


async def receive_archive(request: Request, folder: Path, limit: int) -> ReceivedFile:
    """Stream the multipart `file` field into `folder`; 413 past `limit`, 415 if not an archive."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(413, f"the file is larger than the limit of {limit // 2**20} MB")
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise HTTPException(422, NOT_A_FORM)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upload-{secrets.token_hex(16)}"
    receiver = _Receiver(path, limit)
    parser = MultipartParser(options[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except _TooLarge:
        path.unlink(missing_ok=True)
        raise HTTPException(
            413, f"the file is larger than the limit of {limit // 2**20} MB"
        ) from None
    except MultipartParseError:  # a broken form was a 500
        path.unlink(missing_ok=True)
        raise HTTPException(422, NOT_A_FORM) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        receiver.close()
    return _checked(receiver, path)


def _checked(receiver: _Receiver, path: Path) -> ReceivedFile:
    if not receiver.found:
        raise HTTPException(422, "no file was sent (expected a form field named file)")
    with path.open("rb") as f:
        head = f.read(512)
    if archive_kind(head) is None:
        path.unlink(missing_ok=True)
        raise HTTPException(
            415, "this is not a ZIP or TAR archive; please upload the export file as downloaded"
        )
    return ReceivedFile(path=path, filename=receiver.filename, size=receiver.size)
