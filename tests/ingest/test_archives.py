"""Reading exports in place: folders, ZIP and TAR archives, nesting, and every hostile archive."""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from PIL import Image

from service.ingest import archives
from service.ingest.archives import ArchiveError, ArchiveLimits, PhotoReadError, iter_archive
from service.ingest.items import PhotoItem
from service.ingest.sources import iter_members, iter_photos

MiB = 1024 * 1024


def encoded(fmt: str, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, fmt)
    return out.getvalue()


JPEG = encoded("JPEG")
PNG = encoded("PNG", "blue")


def zip_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    path.write_bytes(zip_bytes(files))
    return path


def make_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def add_tar_entry(path: Path, info: tarfile.TarInfo, data: bytes = b"") -> None:
    with tarfile.open(path, "a") as archive:
        archive.addfile(info, io.BytesIO(data) if data else None)


def patch_zip(data: bytes, name: bytes, **fields: int) -> bytes:
    """Rewrites header fields of the member `name` in both the local and the central header."""
    local = {"flag": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I"), "size": (22, "<I")}
    central = {"flag": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"), "size": (24, "<I")}
    central["offset"] = (42, "<I")
    out = bytearray(data)
    for signature, name_at, layout in ((b"PK\x03\x04", 30, local), (b"PK\x01\x02", 46, central)):
        at = out.find(signature)
        while at != -1:
            if out[at + name_at : at + name_at + len(name)] == name:
                for field, value in fields.items():
                    if field in layout:
                        offset, fmt = layout[field]
                        struct.pack_into(fmt, out, at + offset, value)
            at = out.find(signature, at + 4)
    return bytes(out)


def zeros_zip(tmp_path: Path, true_size: int, declared_size: int) -> Path:
    """A ZIP whose member `zeros.jpg` inflates to `true_size` zeros but declares `declared_size`."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(bytes(MiB)) + packer.flush(zlib.Z_FULL_FLUSH)
    deflated = block * (true_size // MiB) + packer.flush()
    crc = 0
    for _ in range(true_size // MiB):
        crc = zlib.crc32(bytes(MiB), crc)
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("before.jpg", JPEG)
        archive.writestr("zeros.jpg", deflated)  # stored, then relabelled as deflated below
        archive.writestr("after.jpg", PNG)
    patched = patch_zip(raw.getvalue(), b"zeros.jpg", method=8, crc=crc, size=declared_size)
    path = tmp_path / "bomb.zip"
    path.write_bytes(patched)
    return path


def keys(items: Iterator[PhotoItem]) -> list[str]:
    return [item.key for item in items]


def read_all(path: Path, limits: ArchiveLimits | None = None) -> dict[str, bytes]:
    return {item.key: item.read() for item in iter_photos(path, limits)}


def listing(paths: Iterable[Path]) -> set[tuple[str, int]]:
    return {(str(p), p.stat().st_size if p.is_file() else -1) for p in paths}


def nearby(tmp_path: Path) -> set[tuple[str, int]]:
    """This test session's files, and what lies loose above them. Other pytest sessions on the
    machine come and go beside this one, so their folders are left out."""
    session, top = tmp_path.parent, tmp_path.parent.parent
    loose = (p for p in top.iterdir() if not p.name.startswith("pytest-"))
    return listing(session.rglob("*")) | listing(loose)


def cwd_files() -> set[str]:
    return {name for name in os.listdir() if not name.startswith(".")}  # not the tools' caches


@contextmanager
def nothing_written(tmp_path: Path) -> Iterator[None]:
    """Nothing may appear anywhere near the archive: not beside it, above it, nor in the cwd."""
    before = nearby(tmp_path), cwd_files()
    yield
    assert (nearby(tmp_path), cwd_files()) == before


def refused(path: Path, limits: ArchiveLimits | None = None) -> str:
    """The refusal a scan meets; like the scanner, it reports unreadable photos and goes on."""
    with pytest.raises(ArchiveError) as caught:
        for item in iter_photos(path, limits):
            with suppress(PhotoReadError):
                item.read()
    message = str(caught.value)
    assert message.startswith("This ") and message.endswith(".") and "please" in message
    assert message.count(". ") == 0, "one sentence"
    return message


# Reading what real exports hold


def test_it_finds_photos_in_nested_folders_and_ignores_other_files(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "export.zip",
        {
            "Takeout/Google Photos/Photos from 2019/IMG_1.jpg": JPEG,
            "Takeout/Google Photos/Photos from 2019/IMG_1.jpg.json": b"{}",
            "Takeout/Google Photos/Trip/": b"",
            "Takeout/Google Photos/Trip/beach.PNG": PNG,
            "Takeout/archive_browser.html": b"<html>",
            "Takeout/video.mp4": b"\x00\x00\x00\x18ftypmp42",
            "__MACOSX/Takeout/._IMG_1.jpg": b"\x00\x05\x16\x07",
            "Takeout/.DS_Store": b"\x00\x00\x00\x01Bud1",
        },
    )
    with nothing_written(tmp_path):
        photos = read_all(path)
    assert photos == {
        "Takeout/Google Photos/Photos from 2019/IMG_1.jpg": JPEG,
        "Takeout/Google Photos/Trip/beach.PNG": PNG,
    }


def test_it_reads_a_tar_gz_in_the_order_it_was_written(tmp_path: Path) -> None:
    files = {"z/last-written-first.jpg": JPEG, "a/second.png": PNG, "m/notes.txt": b"hi"}
    path = make_tar(tmp_path / "archive.tar.gz", files)
    with nothing_written(tmp_path):
        photos = [(item.key, item.read()) for item in iter_photos(path)]
    assert photos == [("z/last-written-first.jpg", JPEG), ("a/second.png", PNG)]


def test_it_reads_a_plain_tar(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "archive.tar", {"./media/a.jpg": JPEG}, mode="w")
    assert read_all(path) == {"media/a.jpg": JPEG}


@pytest.mark.parametrize("name", ["export.bin", "export", "export.zip"])
def test_it_recognises_an_archive_by_its_bytes_not_its_name(tmp_path: Path, name: str) -> None:
    tar = make_tar(tmp_path / "real.tar.gz", {"a.jpg": JPEG})
    zipped = make_zip(tmp_path / "real.zip", {"b.jpg": PNG})
    (tmp_path / f"tar-{name}").write_bytes(tar.read_bytes())
    (tmp_path / f"zip-{name}").write_bytes(zipped.read_bytes())
    assert read_all(tmp_path / f"tar-{name}") == {"a.jpg": JPEG}
    assert read_all(tmp_path / f"zip-{name}") == {"b.jpg": PNG}


def test_it_finds_photos_without_a_suffix_by_their_first_bytes(tmp_path: Path) -> None:
    webp, tiff = encoded("WEBP"), encoded("TIFF")
    path = make_zip(
        tmp_path / "facebook.zip",
        {"media/123_n_456": JPEG, "media/789_n_1": webp, "media/2": tiff, "README": b"Hello"},
    )
    assert read_all(path) == {"media/123_n_456": JPEG, "media/789_n_1": webp, "media/2": tiff}
    tar = make_tar(tmp_path / "facebook.tar.gz", {"media/123_n_456": JPEG, "README": b"Hello"})
    assert read_all(tar) == {"media/123_n_456": JPEG}


def test_it_reads_a_single_photo_file(tmp_path: Path) -> None:
    (tmp_path / "me.jpg").write_bytes(JPEG)
    (tmp_path / "10158_n_20").write_bytes(PNG)
    assert read_all(tmp_path / "me.jpg") == {"me.jpg": JPEG}
    assert read_all(tmp_path / "10158_n_20") == {"10158_n_20": PNG}


def test_it_walks_a_folder_sorted_and_skips_hidden_files(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for name, data in {
        "b/2.jpg": JPEG,
        "a/1.png": PNG,
        "a/.hidden.jpg": JPEG,
        ".secret/3.jpg": JPEG,
        "__MACOSX/a/._1.png": b"\x00\x05\x16\x07",
        ".DS_Store": b"Bud1",
        "notes.txt": b"hello",
        "no-suffix": JPEG,
        "c.JPG": JPEG,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    photos = [(item.key, item.read()) for item in iter_photos(root)]
    assert photos == [
        ("a/1.png", PNG),
        ("b/2.jpg", JPEG),
        ("c.JPG", JPEG),
        ("no-suffix", JPEG),
    ]


def test_it_does_not_follow_links_out_of_a_folder(tmp_path: Path) -> None:
    root, outside = tmp_path / "photos", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(PNG)
    (root / "mine.jpg").write_bytes(JPEG)
    (root / "escape.jpg").symlink_to(outside / "secret.jpg")
    (root / "escape-dir").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "again.jpg").symlink_to(root / "mine.jpg")
    read, refused = {}, {}
    for item in iter_photos(root):
        try:
            read[item.key] = item.read()
        except PhotoReadError as e:
            refused[item.key] = str(e)
    assert read == {"again.jpg": JPEG, "mine.jpg": JPEG}
    # What was skipped is said, so a scan reports it among its errors.
    assert refused == {
        "escape-dir": "a link to a folder: not followed",
        "escape.jpg": "a link to a file outside the folder: skipped",
        "loop": "a link to a folder: not followed",
    }


# Archives inside a folder


def folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def outcomes(path: Path) -> list[tuple[str, bytes | str]]:
    """Every item in order with its bytes, or the message of the PhotoReadError it raised."""
    found: list[tuple[str, bytes | str]] = []
    for item in iter_photos(path):
        try:
            found.append((item.key, item.read()))
        except PhotoReadError as error:
            found.append((item.key, str(error)))
    return found


def test_it_opens_a_zip_inside_a_folder_at_its_place(tmp_path: Path) -> None:
    export = zip_bytes({"one.jpg": JPEG, "notes.txt": b"hi", "sub/two.png": PNG})
    root = folder(tmp_path / "photos", {"export.zip": export, "me.jpg": JPEG})
    with nothing_written(tmp_path):
        photos = [(item.key, item.read()) for item in iter_photos(root)]
    assert photos == [
        ("export.zip/one.jpg", JPEG),
        ("export.zip/sub/two.png", PNG),
        ("me.jpg", JPEG),
    ]
    assert [member.name for member in iter_members(root)] == [
        "export.zip/one.jpg",
        "export.zip/notes.txt",
        "export.zip/sub/two.png",
        "me.jpg",
    ]


def test_it_opens_a_tar_gz_inside_a_folder(tmp_path: Path) -> None:
    tar = make_tar(tmp_path / "2019.tar.gz", {"q/1.jpg": JPEG, "q/2.png": PNG})
    root = folder(tmp_path / "photos", {"a.jpg": JPEG, "backups/2019.tar.gz": tar.read_bytes()})
    assert outcomes(root) == [
        ("a.jpg", JPEG),
        ("backups/2019.tar.gz/q/1.jpg", JPEG),
        ("backups/2019.tar.gz/q/2.png", PNG),
    ]


@pytest.mark.parametrize(
    ("hostile", "refusal"),
    [
        (zip_bytes({"ok.jpg": JPEG, "../../evil.jpg": JPEG}), "outside"),
        (patch_zip(zip_bytes({"secret.jpg": JPEG}), b"secret.jpg", flag=0x1), "password"),
        (b"PK\x03\x04 the start of a zip, and nothing else", "damaged"),
    ],
    ids=["slip", "encrypted", "truncated"],
)
def test_it_reports_a_hostile_archive_in_a_folder_and_goes_on(
    tmp_path: Path, hostile: bytes, refusal: str
) -> None:
    root = folder(tmp_path / "photos", {"a.jpg": PNG, "bad.zip": hostile, "good.jpg": JPEG})
    with nothing_written(tmp_path):
        found = outcomes(root)
    assert [key for key, _ in found] == ["a.jpg", "bad.zip", "good.jpg"]
    assert found[0] == ("a.jpg", PNG) and found[2] == ("good.jpg", JPEG)
    message = found[1][1]
    assert isinstance(message, str) and refusal in message
    assert message.startswith("This ") and message.endswith(".") and message.count(". ") == 0
    assert not list(tmp_path.parent.parent.rglob("evil.jpg"))
    # The members' pass (export detection) leaves the refused archive out without stopping.
    assert [member.name for member in iter_members(root)] == ["a.jpg", "good.jpg"]


def test_it_reports_a_tar_in_a_folder_refused_midway_after_its_photos(tmp_path: Path) -> None:
    root = folder(tmp_path / "photos", {"z.jpg": JPEG})
    tar = make_tar(root / "links.tar", {"ok.jpg": PNG}, mode="w")
    link = tarfile.TarInfo("photo.jpg")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    add_tar_entry(tar, link)
    found = outcomes(root)
    assert [key for key, _ in found] == ["links.tar/ok.jpg", "links.tar", "z.jpg"]
    assert found[0][1] == PNG and "links or special files" in str(found[1][1])
    assert [member.name for member in iter_members(root)] == ["links.tar/ok.jpg", "z.jpg"]


def test_it_reports_a_bomb_met_while_reading_a_photo_in_a_folder(tmp_path: Path) -> None:
    root = folder(tmp_path / "photos", {"z.jpg": JPEG})
    with tarfile.open(root / "bomb.tar.gz", "w:gz", compresslevel=9) as archive:
        zeros = tarfile.TarInfo("zeros.jpg")
        zeros.size = 8 * MiB
        archive.addfile(zeros, io.BytesIO(bytes(zeros.size)))
    found = outcomes(root)
    assert [key for key, _ in found] == ["bomb.tar.gz/zeros.jpg", "bomb.tar.gz", "z.jpg"]
    assert "far more data" in str(found[0][1]) and "far more data" in str(found[1][1])
    assert found[2] == ("z.jpg", JPEG)


def test_it_leaves_a_file_in_a_folder_only_named_like_an_archive_as_it_was(
    tmp_path: Path,
) -> None:
    root = folder(tmp_path / "photos", {"a.jpg": JPEG, "x.zip": b"just text, not an archive"})
    assert outcomes(root) == [("a.jpg", JPEG)]
    assert [member.name for member in iter_members(root)] == ["a.jpg", "x.zip"]


def test_it_still_refuses_an_archive_given_directly_as_a_whole(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "slip.zip", {"ok.jpg": JPEG, "../../evil.jpg": JPEG})
    assert "outside" in refused(path)
    with pytest.raises(ArchiveError, match="outside"):
        list(iter_members(path))


# Archives inside archives


def test_it_reads_zips_inside_a_zip_in_place(tmp_path: Path) -> None:
    part1 = zip_bytes({"Takeout/Google Photos/a.jpg": JPEG, "Takeout/a.jpg.json": b"{}"})
    part2 = zip_bytes({"Takeout/Google Photos/b.png": PNG})
    path = make_zip(tmp_path / "all.zip", {"takeout-001.zip": part1, "sub/takeout-002.zip": part2})
    with nothing_written(tmp_path):
        photos = read_all(path)
    assert photos == {
        "takeout-001.zip/Takeout/Google Photos/a.jpg": JPEG,
        "sub/takeout-002.zip/Takeout/Google Photos/b.png": PNG,
    }


@pytest.mark.parametrize("tail", [archives._ZIP_TAIL, 100], ids=["tail-in-memory", "re-read"])
def test_it_reads_a_zip_inside_a_tar_gz_and_a_tar_inside_a_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: int
) -> None:
    monkeypatch.setattr(archives, "_ZIP_TAIL", tail)  # a small tail makes zipfile seek back
    inner_zip = zip_bytes({f"p/{i}.jpg": JPEG for i in range(5)})
    outer_tar = make_tar(tmp_path / "outer.tgz", {"x.jpg": PNG, "in.zip": inner_zip, "y.jpg": PNG})
    assert keys(iter_photos(outer_tar)) == [
        "x.jpg",
        *[f"in.zip/p/{i}.jpg" for i in range(5)],
        "y.jpg",
    ]
    assert set(read_all(outer_tar).values()) == {JPEG, PNG}
    inner_tar = make_tar(tmp_path / "inner.tar.gz", {"q/1.jpg": JPEG})
    outer_zip = make_zip(tmp_path / "outer.zip", {"backup.tar.gz": inner_tar.read_bytes()})
    assert read_all(outer_zip) == {"backup.tar.gz/q/1.jpg": JPEG}


def test_it_refuses_archives_nested_three_deep(tmp_path: Path) -> None:
    inner = zip_bytes({"photo.jpg": JPEG})
    middle = zip_bytes({"inner.zip": inner})
    path = make_zip(tmp_path / "outer.zip", {"middle.zip": middle})
    with nothing_written(tmp_path):
        assert "archives inside archives" in refused(path)
    deeper = ArchiveLimits(max_nesting=2)
    assert read_all(path, deeper) == {"middle.zip/inner.zip/photo.jpg": JPEG}


def test_it_treats_a_file_only_named_like_an_archive_as_an_ordinary_file(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "export.zip", {"notes.zip": b"just text", "a.jpg": JPEG})
    assert [member.name for member in iter_archive(path)] == ["notes.zip", "a.jpg"]


# Hostile archives


@pytest.mark.parametrize(
    "name",
    ["../../evil.jpg", "/etc/x.jpg", "C:/Windows/x.jpg", "a/../../x.jpg", "..\\..\\evil.jpg"],
)
def test_it_refuses_paths_that_point_outside_the_archive(tmp_path: Path, name: str) -> None:
    zipped = make_zip(tmp_path / "slip.zip", {"ok.jpg": JPEG, name: JPEG})
    tarred = make_tar(tmp_path / "slip.tar.gz", {"ok.jpg": JPEG, name: JPEG})
    with nothing_written(tmp_path):
        assert "outside" in refused(zipped)
        assert "outside" in refused(tarred)
    assert not list(tmp_path.parent.parent.rglob("evil.jpg"))


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE]
)
def test_it_refuses_links_and_devices_in_a_tar(tmp_path: Path, kind: bytes) -> None:
    path = make_tar(tmp_path / "links.tar", {"ok.jpg": JPEG}, mode="w")
    link = tarfile.TarInfo("photo.jpg")
    link.type, link.linkname = kind, "/etc/passwd"
    add_tar_entry(path, link)
    given: list[str] = []
    with nothing_written(tmp_path), pytest.raises(ArchiveError, match="links or special files"):
        for item in iter_photos(path):
            given.append(item.key)
            item.read()
    assert given == ["ok.jpg"]  # a stream is refused when it reaches the link


def test_it_refuses_a_symlink_in_a_zip(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("photo.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    assert "links or special files" in refused(path)


def test_it_refuses_an_honest_zip_bomb_before_unpacking_anything(tmp_path: Path) -> None:
    path = zeros_zip(tmp_path, true_size=300 * MiB, declared_size=300 * MiB)
    with nothing_written(tmp_path):
        assert "far more data" in refused(path)


def test_it_stops_reading_a_member_whose_header_understates_its_size(tmp_path: Path) -> None:
    path = zeros_zip(tmp_path, true_size=300 * MiB, declared_size=2 * MiB)
    items = iter_photos(path)
    assert next(items).read() == JPEG
    lying = next(items)
    tracemalloc.start()
    with pytest.raises(PhotoReadError, match="damaged"):
        lying.read()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * MiB  # the 300 MiB were never inflated
    assert next(items).read() == PNG


def test_it_refuses_a_tar_gz_bomb_while_streaming(tmp_path: Path) -> None:
    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=9) as archive:
        archive.addfile(tarfile.TarInfo("first.jpg"), io.BytesIO(b""))
        zeros = tarfile.TarInfo("zeros.bin")
        zeros.size = 64 * MiB
        archive.addfile(zeros, io.BytesIO(bytes(zeros.size)))
    assert "far more data" in refused(path)


def test_it_refuses_a_giant_tar_header(tmp_path: Path) -> None:
    path = tmp_path / "header.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a.jpg")
        info.pax_headers = {"comment": os.urandom(3 * MiB).hex()}
        archive.addfile(info, io.BytesIO(b""))
    assert "damaged or incomplete" in refused(path)


def test_it_refuses_an_encrypted_zip(tmp_path: Path) -> None:
    data = patch_zip(zip_bytes({"secret.jpg": JPEG}), b"secret.jpg", flag=0x1)
    (tmp_path / "locked.zip").write_bytes(data)
    assert "password" in refused(tmp_path / "locked.zip")


def test_it_refuses_overlapping_zip_entries(tmp_path: Path) -> None:
    data = patch_zip(zip_bytes({"a.jpg": JPEG, "b.jpg": PNG}), b"b.jpg", offset=0)
    (tmp_path / "overlap.zip").write_bytes(data)
    assert "far more data" in refused(tmp_path / "overlap.zip")


def test_it_refuses_a_text_file_renamed_zip(tmp_path: Path) -> None:
    (tmp_path / "export.zip").write_text("These are my photos, promise.\n" * 40)
    assert refused(tmp_path / "export.zip") == (
        "This file is not a ZIP or TAR archive; "
        "please upload the export file exactly as you downloaded it."
    )


def test_it_refuses_a_truncated_zip_and_tar_gz(tmp_path: Path) -> None:
    files = {f"{i}.jpg": os.urandom(20_000) for i in range(4)}
    for path in (make_zip(tmp_path / "cut.zip", files), make_tar(tmp_path / "cut.tgz", files)):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        assert "damaged or incomplete" in refused(path)


def test_it_reports_a_corrupt_photo_and_goes_on(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("a.jpg", JPEG)
        archive.writestr("b.jpg", PNG)
    data = bytearray(raw.getvalue())
    data[30 + len("a.jpg") + 100] ^= 0xFF  # inside a.jpg's stored bytes: its CRC no longer matches
    (tmp_path / "crc.zip").write_bytes(data)
    items = iter_photos(tmp_path / "crc.zip")
    with pytest.raises(PhotoReadError, match="damaged"):
        next(items).read()
    assert next(items).read() == PNG


def test_it_reports_a_photo_too_large_and_goes_on(tmp_path: Path) -> None:
    small = ArchiveLimits(max_member_bytes=len(JPEG))
    big = PNG + bytes(len(JPEG))
    for path in (
        make_zip(tmp_path / "big.zip", {"big.png": big, "ok.jpg": JPEG}),
        make_tar(tmp_path / "big.tgz", {"big.png": big, "ok.jpg": JPEG}),
    ):
        items = iter_photos(path, small)
        with pytest.raises(PhotoReadError, match="larger than"):
            next(items).read()
        assert next(items).read() == JPEG


def test_it_refuses_too_many_files(tmp_path: Path) -> None:
    files = {f"{i}.jpg": JPEG for i in range(5)}
    few = ArchiveLimits(max_members=3)
    assert "more than 3 files" in refused(make_zip(tmp_path / "many.zip", files), few)
    assert "more than 3 files" in refused(make_tar(tmp_path / "many.tgz", files), few)


def test_it_counts_zip_files_itself_rather_than_trusting_the_end_record(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({f"{i}.jpg": JPEG for i in range(5)}))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)  # "this archive holds 1 file"
    (tmp_path / "lying.zip").write_bytes(data)
    assert "more than 3 files" in refused(tmp_path / "lying.zip", ArchiveLimits(max_members=3))
    struct.pack_into("<HH", data, end + 8, 60_000, 60_000)
    (tmp_path / "boast.zip").write_bytes(data)
    assert "more than 3 files" in refused(tmp_path / "boast.zip", ArchiveLimits(max_members=3))


def test_it_refuses_an_archive_that_unpacks_too_large(tmp_path: Path) -> None:
    files = {"a.jpg": os.urandom(600), "b.jpg": os.urandom(600)}
    tiny = ArchiveLimits(max_total_bytes=1000)
    with pytest.raises(ArchiveError, match="unpacks to more than"):
        read_all(make_zip(tmp_path / "big.zip", files), tiny)
    with pytest.raises(ArchiveError, match="unpacks to more than"):
        read_all(make_tar(tmp_path / "big.tgz", files), tiny)


def test_it_refuses_folders_nested_too_deep(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "deep.zip", {"a/b/c/d.jpg": JPEG})
    assert "levels deep" in refused(path, ArchiveLimits(max_path_depth=3))


def test_it_reads_names_that_are_not_utf8(tmp_path: Path) -> None:
    data = zip_bytes({"cafX.jpg": JPEG}).replace(b"cafX.jpg", b"caf\x82.jpg")  # cp437 é, no flag
    (tmp_path / "dos.zip").write_bytes(data)
    assert read_all(tmp_path / "dos.zip") == {"café.jpg": JPEG}
    tar = make_tar(tmp_path / "latin1.tar", {"caf\udce9.jpg": JPEG}, mode="w")  # raw byte 0xE9
    assert read_all(tar) == {"caf\ufffd.jpg": JPEG}


def test_it_refuses_to_read_a_tar_photo_after_moving_on(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "stream.tgz", {"a.jpg": JPEG, "b.jpg": PNG})
    items = iter_photos(path)
    first, second = next(items), next(items)
    with pytest.raises(PhotoReadError, match="moved on"):
        first.read()
    assert second.read() == PNG
