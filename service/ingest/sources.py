"""Every photo in a folder, a single image file or an export archive, as PhotoItems."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from service.ingest.archives import (
    ArchiveLimits,
    ArchiveMember,
    PhotoReadError,
    archive_kind,
    iter_archive,
    refuse_oversized,
)
from service.ingest.items import PhotoItem, looks_like_photo

_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_SNIFF_BYTES = 16
_UNREADABLE = "This photo could not be read from the folder."


def has_photo_signature(head: bytes) -> bool:
    """True when a file's first bytes are those of a JPEG, PNG, GIF, WebP, HEIC, BMP or TIFF."""
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def is_hidden(key: str) -> bool:
    """True for macOS and dot-file clutter (`.DS_Store`, `__MACOSX/._IMG.jpg`) that is no photo."""
    return any(part.startswith(".") or part == "__MACOSX" for part in key.split("/"))


def iter_photos(path: Path, limits: ArchiveLimits | None = None) -> Iterator[PhotoItem]:
    """The photos in a folder, an image file or a ZIP/TAR archive, lazily and in stable order.

    Each item's `read()` must be called before the next item is requested (a TAR is a stream);
    it returns the bytes or raises PhotoReadError for that photo alone. ArchiveError refuses the
    whole archive: a ZIP before its first item, a TAR possibly after some items (a stream is
    checked as it is read), even from inside `read()` when the bytes show a bomb.
    """
    limits = limits or ArchiveLimits()
    if path.is_dir():
        yield from _iter_folder(path, limits)
    elif _is_single_photo(path):
        yield PhotoItem(key=path.name, read=lambda: _read_file(path, None, limits))
    else:
        for member in iter_archive(path, limits):
            if is_photo_member(member):
                yield PhotoItem(key=member.name, read=member.read)


def _is_single_photo(path: Path) -> bool:
    if looks_like_photo(path.name):
        return True
    with path.open("rb") as file:
        head = file.read(512)
    return "." not in path.name and archive_kind(head) is None and has_photo_signature(head)


def is_photo_member(member: ArchiveMember) -> bool:
    """True for a member that is a photo: by its suffix, or by its first bytes when it has none."""
    if is_hidden(member.name):
        return False
    base = member.name.rsplit("/", 1)[-1]
    if looks_like_photo(base):
        return True
    if "." in base:
        return False
    try:  # Facebook names some photos by id alone, with no suffix
        return has_photo_signature(member.head(_SNIFF_BYTES))
    except PhotoReadError:
        return False


def iter_members(path: Path, limits: ArchiveLimits | None = None) -> Iterator[ArchiveMember]:
    """Every file of a folder, a single file or a ZIP/TAR archive, as archive members named by
    their relative paths, lazily and in the same stable order as `iter_photos`."""
    limits = limits or ArchiveLimits()
    if path.is_dir():
        real_root = path.resolve()
        for file, skipped in _walk(path, real_root, limits.max_path_depth):
            if skipped is None:
                yield _file_member(file, file.relative_to(path).as_posix(), real_root, limits)
    elif _is_single_photo(path):
        yield _file_member(path, path.name, None, limits)
    else:
        yield from iter_archive(path, limits)


def _file_member(
    path: Path, name: str, real_root: Path | None, limits: ArchiveLimits
) -> ArchiveMember:
    def head(n: int) -> bytes:
        try:
            with path.open("rb") as file:
                return file.read(n)
        except OSError as error:
            raise PhotoReadError(_UNREADABLE) from error

    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # gone since the folder was walked: read() will say so
    return ArchiveMember(name, size, lambda: _read_file(path, real_root, limits), head)


def _iter_folder(root: Path, limits: ArchiveLimits) -> Iterator[PhotoItem]:
    real_root = root.resolve()
    for path, skipped in _walk(root, real_root, limits.max_path_depth):
        key = path.relative_to(root).as_posix()
        if skipped is not None:
            yield PhotoItem(key=key, read=_refusal(skipped))  # reported, not silently dropped
        elif looks_like_photo(path.name) or ("." not in path.name and _sniff_file(path)):
            yield PhotoItem(key=key, read=_file_reader(path, real_root, limits))


def _walk(folder: Path, real_root: Path, depth: int) -> Iterator[tuple[Path, str | None]]:
    """Files under `folder`, depth first and sorted by name, never leaving `real_root`: each with
    None, or why it was skipped (a link to a folder, or to a file outside `real_root`)."""
    if depth < 0:
        return
    with os.scandir(folder) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        path = Path(entry.path)
        if is_hidden(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path, real_root, depth - 1)
        elif entry.is_symlink() and entry.is_dir():
            yield path, "a link to a folder: not followed"
        elif entry.is_file():
            inside = _is_inside(path, real_root)
            yield path, None if inside else "a link to a file outside the folder: skipped"


def _refusal(reason: str) -> Callable[[], bytes]:
    def read() -> bytes:
        raise PhotoReadError(reason)

    return read


def _is_inside(path: Path, real_root: Path) -> bool:
    # A symlink may point anywhere; only files that resolve inside the folder are photos of it.
    return path.resolve().is_relative_to(real_root)


def _sniff_file(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return has_photo_signature(file.read(_SNIFF_BYTES))
    except OSError:
        return False


def _file_reader(path: Path, real_root: Path, limits: ArchiveLimits) -> Callable[[], bytes]:
    return lambda: _read_file(path, real_root, limits)


def _read_file(path: Path, real_root: Path | None, limits: ArchiveLimits) -> bytes:
    try:
        if real_root is not None and not _is_inside(path, real_root):
            raise PhotoReadError(_UNREADABLE)  # the link was changed after the folder was walked
        refuse_oversized(path.stat().st_size, limits)
        with path.open("rb") as file:
            data = file.read(limits.max_member_bytes + 1)
    except OSError as error:
        raise PhotoReadError(_UNREADABLE) from error
    refuse_oversized(len(data), limits)
    return data
