"""Facebook exports: both layouts, every place a photo is described, and the HTML refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.ingest.errors import ExportError
from service.ingest.exports import iter_export
from tests.ingest.builders import (
    jpeg,
    meta_json,
    read_items,
    under,
    unix,
    utc,
    write_tar,
    write_zip,
)

MEDIA = "your_facebook_activity/posts/media"
POSTS = "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json"


def export_2024() -> dict[str, bytes]:
    post = {
        "timestamp": unix(2024, 5, 1, 10),
        "title": "Jane Doe added 2 new photos.",
        "data": [{"post": "Café by the river 🌅"}, {"update_timestamp": unix(2024, 5, 1, 10)}],
        "attachments": [
            {
                "data": [
                    {
                        "media": {
                            "uri": f"{MEDIA}/TimelinePhotos_8f3kQ2xZ/111_n_1.jpg",
                            "creation_timestamp": unix(2024, 5, 1, 9),
                            "media_metadata": {
                                "photo_metadata": {
                                    "exif_data": [{"taken_timestamp": unix(2024, 4, 30, 18)}]
                                }
                            },
                            "title": "Timeline photos",
                            "description": "Ana and me at the café",
                        }
                    },
                    {
                        "media": {
                            "uri": f"{MEDIA}/TimelinePhotos_8f3kQ2xZ/222_n_2.jpg",
                            "creation_timestamp": unix(2024, 5, 1, 9, 1),
                            "media_metadata": {
                                "photo_metadata": {"exif_data": [{"taken_timestamp": -62169958800}]}
                            },
                            "title": "Timeline photos",
                        }
                    },
                ]
            },
            {"data": [{"place": {"name": "Pont Neuf"}}]},
        ],
    }
    album = {
        "name": "Profile pictures",
        "photos": [
            {"uri": f"{MEDIA}/ProfilePictures_Qw3rTy/333_n_3.jpg", "creation_timestamp": 1690000000}
        ],
        "cover_photo": {"uri": f"{MEDIA}/ProfilePictures_Qw3rTy/333_n_3.jpg"},
    }
    return {
        "personal_information/profile_information/profile_information.json": meta_json(
            {"profile_v2": {"name": {"full_name": "Jane Doe"}}}
        ),
        POSTS: meta_json([post]),
        "your_facebook_activity/posts/album/0.json": meta_json(album),
        "your_facebook_activity/posts/your_uncategorized_photos.json": meta_json(
            {"other_photos_v2": [{"uri": f"{MEDIA}/your_posts/444_n_4", "description": "Zoë"}]}
        ),
        "your_facebook_activity/posts/your_videos.json": meta_json(
            {
                "videos_v2": [
                    {
                        "uri": f"{MEDIA}/videos/555_n_5.mp4",
                        "creation_timestamp": unix(2011, 6, 5),
                        "thumbnail": {"uri": f"{MEDIA}/videos/thumbnails/555_n_5.jpg"},
                        "description": "Birthday",
                    }
                ]
            }
        ),
        f"{MEDIA}/TimelinePhotos_8f3kQ2xZ/111_n_1.jpg": jpeg(1),
        f"{MEDIA}/TimelinePhotos_8f3kQ2xZ/222_n_2.jpg": jpeg(2),
        f"{MEDIA}/ProfilePictures_Qw3rTy/333_n_3.jpg": jpeg(3),
        f"{MEDIA}/your_posts/444_n_4": jpeg(4),  # Facebook names some photos by id alone
        f"{MEDIA}/videos/555_n_5.mp4": b"\x00\x00\x00\x18ftypmp42",
        f"{MEDIA}/videos/thumbnails/555_n_5.jpg": jpeg(5),
        f"{MEDIA}/MobileUploads_x1/666_n_6.jpg": jpeg(6),
        f"{MEDIA}/stickers_used/39.png": jpeg(7),
        "your_facebook_activity/messages/inbox/bob_1/photos/777.jpg": jpeg(8),
    }


def test_it_reads_a_2024_facebook_export_with_where_each_photo_was_posted(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "facebook-jane.zip", under("facebook-jane-2024", export_2024()))
    found = read_items(iter_export([path]))
    media = f"facebook-jane-2024/{MEDIA}"
    first, data = found[f"{media}/TimelinePhotos_8f3kQ2xZ/111_n_1.jpg"]
    assert data == jpeg(1)
    assert (first.platform, first.album) == ("facebook", "Timeline photos")
    assert first.caption == "Ana and me at the café"
    assert first.taken_at == utc(2024, 4, 30, 18)  # when it was taken, not uploaded
    second = found[f"{media}/TimelinePhotos_8f3kQ2xZ/222_n_2.jpg"][0]
    assert second.caption == "Café by the river 🌅"  # the post's text, its mojibake repaired
    assert second.taken_at == utc(2024, 5, 1, 9, 1)  # the bogus capture time is ignored
    assert found[f"{media}/ProfilePictures_Qw3rTy/333_n_3.jpg"][0].album == "Profile pictures"
    assert found[f"{media}/your_posts/444_n_4"][0].caption == "Zoë"
    thumbnail = found[f"{media}/videos/thumbnails/555_n_5.jpg"][0]
    assert (thumbnail.caption, thumbnail.taken_at) == ("Birthday", utc(2011, 6, 5))
    assert found[f"{media}/MobileUploads_x1/666_n_6.jpg"][0].platform == "facebook"
    assert len(found) == 6  # no stickers, no private messages, no video file
    assert all(item.post_url is None for item, _ in found.values())


def test_it_gives_the_photos_of_one_post_one_post_key(tmp_path: Path) -> None:
    found = read_items(iter_export([write_zip(tmp_path / "fb.zip", export_2024())]))
    folder = f"{MEDIA}/TimelinePhotos_8f3kQ2xZ"
    first, second = (found[f"{folder}/{name}"][0] for name in ("111_n_1.jpg", "222_n_2.jpg"))
    assert first.post_key is not None and first.post_key.startswith("facebook:")
    assert second.post_key == first.post_key  # the post's two photos: one checklist item
    album_photo = found[f"{MEDIA}/ProfilePictures_Qw3rTy/333_n_3.jpg"][0]
    assert album_photo.post_key is None  # in an album, not a post: a photo of its own
    assert found[f"{MEDIA}/your_posts/444_n_4"][0].post_key is None


def test_it_reads_the_older_facebook_layout_from_a_tar(tmp_path: Path) -> None:
    files = {
        "posts/media/your_posts/1_n_1.jpg": jpeg(1),  # media before the JSON that describes it
        "photos_and_videos/Summer_hdLt/534_n_2.jpg": jpeg(2),
        "posts/your_posts_1.json": meta_json(
            [
                {
                    "timestamp": unix(2019, 7, 1),
                    "data": [{"post": "Sommerfest in Köln"}],
                    "attachments": [
                        {"data": [{"media": {"uri": "posts/media/your_posts/1_n_1.jpg"}}]}
                    ],
                }
            ]
        ),
        "photos_and_videos/album/0.json": meta_json(
            {"name": "Summer", "photos": [{"uri": "photos_and_videos/Summer_hdLt/534_n_2.jpg"}]}
        ),
        "profile_information/profile_information.json": meta_json({"profile_v2": {}}),
    }
    found = read_items(iter_export([write_tar(tmp_path / "fb.tar.gz", files)]))
    post = found["posts/media/your_posts/1_n_1.jpg"][0]
    assert (post.caption, post.taken_at) == ("Sommerfest in Köln", utc(2019, 7, 1))
    assert found["photos_and_videos/Summer_hdLt/534_n_2.jpg"][0].album == "Summer"


def test_it_joins_the_json_of_one_part_to_the_photos_of_another(tmp_path: Path) -> None:
    files = export_2024()
    json_part = {name: data for name, data in files.items() if name.endswith(".json")}
    media_part = {name: data for name, data in files.items() if not name.endswith(".json")}
    parts = [
        write_zip(tmp_path / "part-1.zip", json_part),
        write_tar(tmp_path / "part-2.tgz", media_part),
    ]
    found = read_items(iter_export(parts))
    assert (
        found[f"{MEDIA}/TimelinePhotos_8f3kQ2xZ/111_n_1.jpg"][0].caption == "Ana and me at the café"
    )
    assert found[f"{MEDIA}/ProfilePictures_Qw3rTy/333_n_3.jpg"][0].album == "Profile pictures"


def test_it_gives_a_photo_found_in_a_post_and_an_album_once(tmp_path: Path) -> None:
    uri = f"{MEDIA}/TimelinePhotos_1/1_n_1.jpg"
    files = {
        POSTS: meta_json(
            [{"data": [{"post": "Hello"}], "attachments": [{"data": [{"media": {"uri": uri}}]}]}]
        ),
        "your_facebook_activity/posts/album/1.json": meta_json(
            {"name": "Trip", "photos": [{"uri": uri}]}
        ),
        uri: jpeg(1),
    }
    found = read_items(iter_export([write_zip(tmp_path / "fb.zip", files)]))
    assert [(item.caption, item.album) for item, _ in found.values()] == [("Hello", "Trip")]
    [(item, _)] = found.values()
    assert item.post_key == f"facebook:{uri}"  # the post's description wins over the album's


def test_it_refuses_an_html_export_and_says_how_to_ask_for_json(tmp_path: Path) -> None:
    files = {
        "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.html": b"<html>",
        "personal_information/profile_information/profile_information.html": b"<html>",
        f"{MEDIA}/your_posts/1_n_1.jpg": jpeg(1),
    }
    with pytest.raises(ExportError) as refused:
        list(iter_export([write_zip(tmp_path / "fb.zip", files)]))
    message = str(refused.value)
    assert "HTML" in message and "JSON" in message and "Download your information" in message
