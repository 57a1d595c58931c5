"""The export entry point: layouts it does not know, the streaming contract, hostile archives."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

import pytest

from service.ingest.archives import ArchiveError, ArchiveLimits, PhotoReadError
from service.ingest.exports import iter_export, reader
from service.ingest.sources import iter_photos
from tests.ingest.builders import jpeg, meta_json, read_items, write_tar, write_zip

POSTS = "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json"


def facebook_files(count: int) -> dict[str, bytes]:
    uris = [f"your_facebook_activity/posts/media/Album_1/{n}_n_{n}.jpg" for n in range(count)]
    posts = [
        {"data": [{"post": f"Post {n}"}], "attachments": [{"data": [{"media": {"uri": uri}}]}]}
        for n, uri in enumerate(uris)
    ]
    return {**{uri: jpeg(n) for n, uri in enumerate(uris)}, POSTS: meta_json(posts)}


def test_it_reads_an_unknown_layout_as_a_folder_of_photos(tmp_path: Path) -> None:
    files = {
        "holiday/a.jpg": jpeg(1),
        "holiday/notes.txt": b"hi",
        "b.png": jpeg(2),
        "data.json": b"{}",
    }
    path = write_zip(tmp_path / "photos.zip", files)
    found = read_items(iter_export([path]))
    assert {key: (item.platform, item.post_url) for key, (item, _) in found.items()} == {
        "holiday/a.jpg": ("other", None),
        "b.png": ("other", None),
    }
    assert list(found) == [item.key for item in iter_photos(path)]


def test_it_reads_an_extracted_export_folder(tmp_path: Path) -> None:
    for name, data in facebook_files(2).items():
        (tmp_path / "export" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "export" / name).write_bytes(data)
    found = read_items(iter_export([tmp_path / "export"]))
    assert [item.caption for item, _ in found.values()] == ["Post 0", "Post 1"]


def test_it_gives_tar_photos_in_archive_order_each_readable_until_the_next(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "fb.tgz", facebook_files(4))  # the JSON comes last
    items = iter_export([path])
    first, second = next(items), next(items)
    assert second.read() == jpeg(1)
    with pytest.raises(PhotoReadError, match="moved on"):
        first.read()
    assert [(item.caption, item.read()) for item in items] == [
        ("Post 2", jpeg(2)),
        ("Post 3", jpeg(3)),
    ]


def test_it_refuses_a_hostile_archive_before_giving_any_photo(tmp_path: Path) -> None:
    files = {**facebook_files(2), "../../evil.jpg": jpeg(9)}
    path = write_tar(tmp_path / "fb.tgz", files)
    given = []
    with pytest.raises(ArchiveError, match="outside"):
        for item in iter_export([path]):
            given.append(item.key)
    assert given == []  # the first pass over the stream met it before any photo was given


def test_it_keeps_the_archive_limits(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "fb.zip", facebook_files(3))
    with pytest.raises(ArchiveError, match="more than 2 files"):
        list(iter_export([path], ArchiveLimits(max_members=2)))


def test_it_still_gives_the_photos_when_an_index_file_is_too_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "DOCUMENT_BYTES", 100)
    found = read_items(iter_export([write_zip(tmp_path / "fb.zip", facebook_files(2))]))
    assert [(item.platform, item.caption) for item, _ in found.values()] == [("facebook", None)] * 2


def test_it_still_gives_the_photos_when_an_index_file_is_broken(tmp_path: Path) -> None:
    files = facebook_files(2)
    files[POSTS] = b'[{"attachments": [{"data": [{"media": {"uri": '  # cut short
    found = read_items(iter_export([write_zip(tmp_path / "fb.zip", files)]))
    assert [(item.platform, item.caption) for item, _ in found.values()] == [("facebook", None)] * 2


def test_it_gives_a_file_present_in_two_uploaded_parts_once(tmp_path: Path) -> None:
    files = facebook_files(2)
    parts = [write_zip(tmp_path / "a.zip", files), write_zip(tmp_path / "b.zip", files)]
    assert len(read_items(iter_export(parts))) == 2


def test_it_reports_a_damaged_photo_and_goes_on(tmp_path: Path) -> None:
    files = facebook_files(2)
    path = write_zip(tmp_path / "fb.zip", files)
    data = bytearray(path.read_bytes())
    at = data.find(b"Album_1/0_n_0.jpg") + len("Album_1/0_n_0.jpg") + 40
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    outcomes = []
    for item in iter_export([path]):
        with suppress(PhotoReadError):
            outcomes.append((item.caption, item.read() == jpeg(1)))
    assert outcomes == [("Post 1", True)]


def test_it_reads_export_archives_lying_in_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "downloads"
    root.mkdir()
    write_zip(root / "fb.zip", facebook_files(2))
    (root / "broken.zip").write_bytes(b"PK\x03\x04 and nothing more")
    found = read_items(iter_export([root]))  # the broken archive does not stop the folder
    assert [(key, item.caption) for key, (item, _) in found.items()] == [
        ("fb.zip/your_facebook_activity/posts/media/Album_1/0_n_0.jpg", "Post 0"),
        ("fb.zip/your_facebook_activity/posts/media/Album_1/1_n_1.jpg", "Post 1"),
    ]
    (root / "fb.zip").unlink()
    write_zip(root / "holiday.zip", {"a.jpg": jpeg(1)})
    outcomes = []
    for item in iter_export([root]):  # no layout: a folder of photos, the refusal among them
        try:
            outcomes.append((item.key, item.read() == jpeg(1)))
        except PhotoReadError as error:
            outcomes.append((item.key, "damaged" in str(error)))
    assert outcomes == [("broken.zip", True), ("holiday.zip/a.jpg", True)]
