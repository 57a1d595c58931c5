"""Instagram exports: the three places posts are indexed, carousels, stories, profile photos,
archived posts, the legacy media.json, and the HTML refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.ingest.errors import ExportError
from service.ingest.exports import iter_export
from tests.ingest.builders import as_json, jpeg, meta_json, read_items, unix, utc, write_zip


def media(uri: str, when: int, title: str = "") -> dict[str, object]:
    return {"uri": uri, "creation_timestamp": when, "title": title}


def instagram_export(activity: str) -> dict[str, bytes]:
    posts_1 = [
        {"media": [media("media/posts/202405/1_n_1.jpg", unix(2024, 5, 6), "Sunset 🌅")]},
        {
            "title": "Weekend in Lyon",
            "creation_timestamp": unix(2024, 5, 7),
            "media": [
                media("media/posts/202405/2.jpg", unix(2024, 5, 7, 1)),
                media("media/posts/202405/3.webp", unix(2024, 5, 7, 1)),
                media("media/posts/202405/4.mp4", unix(2024, 5, 7, 1)),
            ],
        },
    ]
    return {
        f"{activity}/posts_1.json": meta_json(posts_1),
        f"{activity}/posts_2.json": meta_json(
            [{"media": [media("media/posts/202301/5.jpg", 1673000000)]}]
        ),
        f"{activity}/stories.json": meta_json(
            {"ig_stories": [media("media/stories/202405/6.jpg", unix(2024, 5, 8), "Café")]}
        ),
        f"{activity}/profile_photos.json": meta_json(
            {"ig_profile_picture": [media("media/profile/202301/7.jpg", unix(2023, 1, 6))]}
        ),
        f"{activity}/archived_posts.json": meta_json(
            {
                "ig_archived_post_media": [
                    {"media": [media("media/archived_posts/202212/8.jpg", 1670000000, "old one")]}
                ]
            }
        ),
        "media/posts/202405/1_n_1.jpg": jpeg(1),
        "media/posts/202405/2.jpg": jpeg(2),
        "media/posts/202405/3.webp": jpeg(3),
        "media/posts/202405/4.mp4": b"\x00\x00\x00\x18ftypmp42",
        "media/posts/202301/5.jpg": jpeg(5),
        "media/stories/202405/6.jpg": jpeg(6),
        "media/profile/202301/7.jpg": jpeg(7),
        "media/archived_posts/202212/8.jpg": jpeg(8),
        "media/other/9.jpg": jpeg(9),
        "your_instagram_activity/messages/inbox/bob_1/photos/10.jpg": jpeg(10),
    }


@pytest.mark.parametrize(
    "activity", ["your_instagram_activity/media", "your_instagram_activity/content", "content"]
)
def test_it_reads_posts_carousels_stories_and_profile_photos(tmp_path: Path, activity: str) -> None:
    found = read_items(
        iter_export([write_zip(tmp_path / "instagram.zip", instagram_export(activity))])
    )
    single = found["media/posts/202405/1_n_1.jpg"][0]
    assert (single.platform, single.caption, single.taken_at) == (
        "instagram",
        "Sunset 🌅",
        utc(2024, 5, 6),
    )
    for key in ("media/posts/202405/2.jpg", "media/posts/202405/3.webp"):
        carousel = found[key][0]
        assert (carousel.caption, carousel.taken_at) == ("Weekend in Lyon", utc(2024, 5, 7))
    assert found["media/posts/202301/5.jpg"][0].taken_at == utc(2023, 1, 6, 10, 13, 20)  # posts_2
    assert (
        found["media/stories/202405/6.jpg"][0].album,
        found["media/stories/202405/6.jpg"][0].caption,
    ) == (
        "Stories",
        "Café",
    )
    assert found["media/profile/202301/7.jpg"][0].album == "Profile photos"
    archived = found["media/archived_posts/202212/8.jpg"][0]
    assert (archived.album, archived.caption) == ("Archived posts", "old one")
    assert found["media/other/9.jpg"][0].platform == "instagram"  # undescribed, still scanned
    assert "your_instagram_activity/messages/inbox/bob_1/photos/10.jpg" not in found
    assert len(found) == 8
    assert all(item.post_url is None for item, _ in found.values())  # exports hold no permalinks


def test_it_gives_the_photos_of_a_carousel_one_post_key(tmp_path: Path) -> None:
    activity = "your_instagram_activity/media"
    found = read_items(
        iter_export([write_zip(tmp_path / "instagram.zip", instagram_export(activity))])
    )
    keys = {key: item.post_key for key, (item, _) in found.items()}
    carousel = keys["media/posts/202405/2.jpg"]
    assert carousel == "instagram:media/posts/202405/2.jpg"  # known by its first picture
    assert keys["media/posts/202405/3.webp"] == carousel
    single = keys["media/posts/202405/1_n_1.jpg"]
    assert single is not None and single != carousel
    assert keys["media/posts/202301/5.jpg"] not in (None, single, carousel)
    assert keys["media/archived_posts/202212/8.jpg"] not in (None, single, carousel)
    # A story, a profile picture or an undescribed file is no post: each is its own item.
    for key in ("media/stories/202405/6.jpg", "media/profile/202301/7.jpg", "media/other/9.jpg"):
        assert keys[key] is None, key


def test_it_keeps_a_post_key_short_enough_to_store(tmp_path: Path) -> None:
    long_uri = "media/posts/202405/" + "x" * 500 + ".jpg"
    posts = [{"media": [media(long_uri, unix(2024, 5, 7)), media("media/posts/2.jpg", 1)]}]
    files = {
        "your_instagram_activity/media/posts_1.json": meta_json(posts),
        long_uri: jpeg(1),
        "media/posts/2.jpg": jpeg(2),
    }
    found = read_items(iter_export([write_zip(tmp_path / "instagram.zip", files)]))
    key = found["media/posts/2.jpg"][0].post_key
    assert key is not None and key.startswith("instagram:sha256:") and len(key) <= 400
    assert found[long_uri][0].post_key == key


def test_it_knows_a_post_without_a_picture_path_by_its_time(tmp_path: Path) -> None:
    posts = [
        {
            "creation_timestamp": unix(2024, 5, 7),
            "media": [{"uri": ""}, media("media/posts/202405/2.jpg", unix(2024, 5, 7))],
        }
    ]
    files = {
        "your_instagram_activity/media/posts_1.json": meta_json(posts),
        "media/posts/202405/2.jpg": jpeg(2),
    }
    found = read_items(iter_export([write_zip(tmp_path / "instagram.zip", files)]))
    assert found["media/posts/202405/2.jpg"][0].post_key == f"instagram:{unix(2024, 5, 7)}"


def test_it_reads_the_legacy_media_json(tmp_path: Path) -> None:
    files = {
        "media.json": as_json(
            {
                "photos": [
                    {
                        "caption": "Harbour",
                        "taken_at": "2018-12-31T08:05:13",
                        "path": "photos/201812/3e02.jpg",
                    }
                ],
                "stories": [
                    {
                        "caption": "",
                        "taken_at": "2019-01-02T10:00:00",
                        "path": "stories/201901/aa.jpg",
                    }
                ],
                "direct": [{"path": "direct/201901/dm.jpg"}],
            }
        ),
        "profile.json": as_json({"username": "jane"}),
        "photos/201812/3e02.jpg": jpeg(1),
        "stories/201901/aa.jpg": jpeg(2),
        "direct/201901/dm.jpg": jpeg(3),
    }
    found = read_items(iter_export([write_zip(tmp_path / "old.zip", files)]))
    harbour = found["photos/201812/3e02.jpg"][0]
    assert (harbour.platform, harbour.caption, harbour.taken_at) == (
        "instagram",
        "Harbour",
        utc(2018, 12, 31, 8, 5, 13),
    )
    assert found["stories/201901/aa.jpg"][0].album == "Stories"
    assert "direct/201901/dm.jpg" not in found


def test_it_keeps_one_copy_of_the_public_media_duplicates(tmp_path: Path) -> None:
    files = instagram_export("your_instagram_activity/media")
    files["public-media/posts/1_n_1.jpg"] = jpeg(1)
    files["public-media/posts/only-here.jpg"] = jpeg(11)
    found = read_items(iter_export([write_zip(tmp_path / "instagram.zip", files)]))
    assert "public-media/posts/1_n_1.jpg" not in found
    assert "public-media/posts/only-here.jpg" in found


def test_it_refuses_an_html_instagram_export(tmp_path: Path) -> None:
    files = {
        "your_instagram_activity/media/posts_1.html": b"<html>",
        "media/posts/202405/1.jpg": jpeg(1),
    }
    with pytest.raises(ExportError, match=r"HTML.*JSON"):
        list(iter_export([write_zip(tmp_path / "instagram.zip", files)]))
