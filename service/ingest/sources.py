"""Every photo in a folder, a single image file or an export archive, as PhotoItems."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ParamSpec

from service.ingest.archives import (
    ArchiveError,
    ArchiveLimits,
    ArchiveMember,
    PhotoReadError,
    archive_kind,
    is_archive_name,
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
_UNREADABLE_ARCHIVE = "This archive could not be read from the folder."

_P = ParamSpec("_P")


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

    In a folder, archives are opened in place too, their photos keyed under the archive's path.
    There a refused archive is one item, keyed by its path, whose `read()` raises PhotoReadError
    with the refusal: a folder holds many downloads, and one bad one must not stop the others.
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
    their relative paths, lazily and in the same stable order as `iter_photos`.

    What a folder's walk skips is left out: links not followed, and the rest of an archive in
    the folder once it is refused (its photos' pass, through `iter_photos`, reports why).
    """
    limits = limits or ArchiveLimits()
    if path.is_dir():
        for member in _folder_members(path, limits):
            if isinstance(member, ArchiveMember):
                yield member
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
    for member in _folder_members(root, limits):
        if isinstance(member, _Skipped):
            yield PhotoItem(key=member.name, read=_refusal(member.reason))  # reported, not dropped
        elif is_photo_member(member):
            yield PhotoItem(key=member.name, read=member.read)


@dataclass(frozen=True)
class _Skipped:
    """A file of a folder that is not read, and why: a link not followed, an archive refused."""

    name: str
    reason: str


def _folder_members(root: Path, limits: ArchiveLimits) -> Iterator[ArchiveMember | _Skipped]:
    """Every file under `root`, named by its relative path, in walk order; an archive among them
    is opened in place, as one inside an archive is, for its members to stand at its place."""
    real_root = root.resolve()
    for path, skipped in _walk(root, real_root, limits.max_path_depth):
        name = path.relative_to(root).as_posix()
        if skipped is not None:
            yield _Skipped(name, skipped)
        elif is_archive_name(path.name) and _is_archive_file(path):
            yield from _folder_archive(path, name, limits)
        else:
            yield _file_member(path, name, real_root, limits)


def _is_archive_file(path: Path) -> bool:
    """True when the file's first bytes are a ZIP's or a TAR's; a file only named like an archive
    stays an ordinary file, as it does inside an archive."""
    try:
        with path.open("rb") as file:
            return archive_kind(file.read(512)) is not None
    except OSError:
        return False


def _folder_archive(
    path: Path, name: str, limits: ArchiveLimits
) -> Iterator[ArchiveMember | _Skipped]:
    """The members of an archive lying in a folder, named under its path there.

    A refusal (before a ZIP's first member, maybe after some of a TAR's) ends this archive alone
    and stands in its place as one skipped file: a folder holds separate downloads, and one
    refused must not stop the others.
    """
    try:
        for member in iter_archive(path, limits):
            yield _under(name, member)
    except ArchiveError as error:
        yield _Skipped(name, str(error))
    except OSError:  # moved or made unreadable since the folder was walked
        yield _Skipped(name, _UNREADABLE_ARCHIVE)


def _under(archive: str, member: ArchiveMember) -> ArchiveMember:
    """`member` named under its archive's path in the folder. A bomb met while reading it is that
    photo's PhotoReadError, not an ArchiveError: the folder's other files are still to be read."""
    return replace(
        member,
        name=f"{archive}/{member.name}",
        read=_photo_error(member.read),
        head=_photo_error(member.head),
    )


def _photo_error(call: Callable[_P, bytes]) -> Callable[_P, bytes]:
    """`call`, raising its ArchiveError as a PhotoReadError with the same message."""

    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> bytes:
        try:
            return call(*args, **kwargs)
        except ArchiveError as error:
            raise PhotoReadError(str(error)) from error

    return guarded


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
