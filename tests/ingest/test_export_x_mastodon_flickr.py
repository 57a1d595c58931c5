"""X archives, Mastodon archives (zip, tar, tar.gz) and Flickr exports in two parts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.ingest.exports import iter_export
from tests.ingest.builders import as_json, jpeg, read_items, utc, write_tar, write_zip

BIG_ID = "1790000000000000001"  # more than 2**53: a float would change it


def js(global_name: str, value: object) -> bytes:
    return f"{global_name} = {json.dumps(value, indent=1)};\n".encode()


def tweet(tweet_id: str, text: str, media: list[dict[str, str]]) -> dict[str, object]:
    return {
        "tweet": {
            "id_str": tweet_id,
            "id": tweet_id,
            "created_at": "Mon May 13 18:22:05 +0000 2024",
            "full_text": text,
            "extended_entities": {"media": media},
        }
    }


def x_archive(media_dir: str = "tweets_media") -> dict[str, bytes]:
    photo = {
        "id_str": "2",
        "type": "photo",
        "url": "https://t.co/AbCdEf1234",
        "media_url_https": "https://pbs.twimg.com/media/GNxYzAbWcAAq1Rz.jpg",
    }
    retweeted = {
        "id_str": "3",
        "type": "photo",
        "url": "https://t.co/Zz",
        "media_url_https": "https://pbs.twimg.com/media/Other.jpg",
        "source_status_id_str": "1700000000000000009",
    }
    return {
        "data/manifest.js": js("window.__THAR_CONFIG", {"userInfo": {"userName": "ignored"}}),
        "data/account.js": js("window.YTD.account.part0", [{"account": {"username": "jane_doe"}}]),
        "data/tweets.js": js(
            "window.YTD.tweets.part0",
            [
                tweet(BIG_ID, "Fish &amp; chips at the harbour https://t.co/AbCdEf1234", [photo]),
                tweet("1700000000000000010", "RT @bob: look https://t.co/Zz", [retweeted]),
            ],
        ),
        f"data/{media_dir}/{BIG_ID}-GNxYzAbWcAAq1Rz.jpg": jpeg(1),
        f"data/{media_dir}/1700000000000000010-Other.jpg": jpeg(2),
        f"data/{media_dir}/{BIG_ID}-Zz9.mp4": b"\x00\x00\x00\x18ftypmp42",
        "data/profile_media/123-avatar.jpg": jpeg(3),
        "data/direct_messages_media/555-dm.jpg": jpeg(4),
        "assets/images/logo.png": jpeg(5),
    }


@pytest.mark.parametrize("media_dir", ["tweets_media", "tweet_media"])
def test_it_reads_an_x_archive_with_links_to_each_post(tmp_path: Path, media_dir: str) -> None:
    found = read_items(iter_export([write_zip(tmp_path / "twitter.zip", x_archive(media_dir))]))
    post = found[f"data/{media_dir}/{BIG_ID}-GNxYzAbWcAAq1Rz.jpg"][0]
    assert post.platform == "x"
    assert post.post_url == f"https://x.com/jane_doe/status/{BIG_ID}"
    assert post.taken_at == utc(2024, 5, 13, 18, 22, 5)
    assert post.caption == "Fish & chips at the harbour"
    retweet = found[f"data/{media_dir}/1700000000000000010-Other.jpg"][0]
    assert retweet.post_url == "https://x.com/i/status/1700000000000000009"  # where it is shown
    assert found["data/profile_media/123-avatar.jpg"][0].album == "Profile photos"
    assert len(found) == 3  # no private messages, no viewer images, no video file
    assert (post.post_key, retweet.post_key) == (f"x:{BIG_ID}", "x:1700000000000000010")
    assert found["data/profile_media/123-avatar.jpg"][0].post_key is None


def test_it_gives_the_pictures_of_one_tweet_one_post_key(tmp_path: Path) -> None:
    media = [{"id_str": str(n), "type": "photo", "url": "https://t.co/Four"} for n in (1, 2)]
    files = {
        "data/tweets.js": js("window.YTD.tweets.part0", [tweet("21", "two of us", media)]),
        "data/tweets_media/21-first.jpg": jpeg(1),
        "data/tweets_media/21-second.jpg": jpeg(2),
        "data/tweets_media/22-another-post.jpg": jpeg(3),
    }
    found = read_items(iter_export([write_zip(tmp_path / "x.zip", files)]))
    first, second = (found[f"data/tweets_media/21-{n}.jpg"][0] for n in ("first", "second"))
    assert first.post_key == second.post_key == "x:21"


def test_it_reads_tweets_split_over_parts_with_the_old_global_name(tmp_path: Path) -> None:
    files = {
        "data/tweet.js": js("window.YTD.tweet.part0", [{"id_str": "11", "full_text": "one"}]),
        "data/tweets-part1.js": js("window.YTD.tweets.part1", [tweet("12", "two", [])]),
        "data/tweet_media/11-a.jpg": jpeg(1),
        "data/tweet_media/12-b.jpg": jpeg(2),
    }
    found = read_items(iter_export([write_tar(tmp_path / "x.tgz", files)]))
    assert [item.post_url for item, _ in found.values()] == [
        "https://x.com/i/status/11",  # no account.js: a link that needs no handle
        "https://x.com/i/status/12",
    ]
    assert [item.caption for item, _ in found.values()] == ["one", "two"]


def mastodon_archive() -> dict[str, bytes]:
    public = "https://www.w3.org/ns/activitystreams#Public"

    def note(number: int, to: list[str], text: str) -> dict[str, object]:
        return {
            "type": "Create",
            "published": f"2024-05-1{number}T07:41:12Z",
            "to": to,
            "object": {
                "id": f"https://mastodon.example/users/jane/statuses/11223344556677889{number}",
                "type": "Note",
                "url": f"https://mastodon.example/@jane/11223344556677889{number}",
                "published": f"2024-05-1{number}T07:41:12Z",
                "content": f"<p>{text}</p><p>second &amp; line</p>",
                "attachment": [
                    {
                        "type": "Document",
                        "mediaType": "image/jpeg",
                        "name": "Wet sand",
                        "url": f"media_attachments/files/112/233/44{number}/original/{number}.jpg",
                    }
                ],
            },
        }

    outbox = {
        "type": "OrderedCollection",
        "orderedItems": [
            note(1, [public], "Low tide"),
            note(2, ["https://mastodon.example/users/jane/followers"], "Friends only"),
            note(3, ["https://other.example/users/bob"], "A private mention"),
            {"type": "Announce", "object": "https://other.example/users/bob/statuses/998877"},
        ],
    }
    return {
        "outbox.json": as_json(outbox),
        "actor.json": as_json({"icon": {"url": "avatar.png"}, "image": {"url": "header.jpg"}}),
        "avatar.png": jpeg(10),
        "header.jpg": jpeg(11),
        **{f"media_attachments/files/112/233/44{n}/original/{n}.jpg": jpeg(n) for n in (1, 2, 3)},
    }


@pytest.mark.parametrize("container", ["archive.tar.gz", "archive.tar", "archive.zip"])
def test_it_reads_a_mastodon_archive_leaving_out_private_mentions(
    tmp_path: Path, container: str
) -> None:
    path = tmp_path / container
    if container.endswith(".zip"):
        write_zip(path, mastodon_archive())
    else:
        write_tar(path, mastodon_archive(), "gz" if container.endswith("gz") else "")
    found = read_items(iter_export([path]))
    low_tide = found["media_attachments/files/112/233/441/original/1.jpg"][0]
    assert low_tide.platform == "mastodon"
    assert low_tide.post_url == "https://mastodon.example/@jane/112233445566778891"
    assert low_tide.taken_at == utc(2024, 5, 11, 7, 41, 12)
    assert low_tide.caption == "Low tide\nsecond & line"
    assert "media_attachments/files/112/233/442/original/2.jpg" in found  # followers-only
    assert "media_attachments/files/112/233/443/original/3.jpg" not in found
    assert found["avatar.png"][0].album == "Profile picture"
    assert len(found) == 4
    # The status's own URI, as a profile scan of the same account knows the post.
    assert (
        low_tide.post_key
        == "mastodon:https://mastodon.example/users/jane/statuses/112233445566778891"
    )
    assert found["avatar.png"][0].post_key is None


def test_it_gives_the_pictures_of_one_mastodon_post_one_post_key(tmp_path: Path) -> None:
    attachments = [
        {"type": "Document", "url": f"media_attachments/files/1/original/{n}.jpg"} for n in (1, 2)
    ]
    status = "https://mastodon.example/users/jane/statuses/7"
    outbox = {
        "orderedItems": [
            {
                "type": "Create",
                "object": {"id": status, "type": "Note", "attachment": attachments},
            }
        ]
    }
    files = {
        "outbox.json": as_json(outbox),
        "actor.json": as_json({}),
        **{f"media_attachments/files/1/original/{n}.jpg": jpeg(n) for n in (1, 2)},
    }
    found = read_items(iter_export([write_zip(tmp_path / "archive.zip", files)]))
    keys = {item.post_key for item, _ in found.values()}
    assert keys == {f"mastodon:{status}"} and len(found) == 2


def test_it_joins_a_flickr_metadata_part_to_its_media_parts(tmp_path: Path) -> None:
    photo = {
        "id": "131099312",
        "name": "Fresh crop",
        "description": "",
        "date_taken": "2006-04-22 14:05:31",
        "photopage": "https://www.flickr.com/photos/janedoe/131099312/",
        "albums": [],
    }
    metadata = {
        "account_profile.json": as_json({"nsid": "12345678@N00"}),
        "photo_131099312.json": as_json(photo),
        "photo_131099313.json": as_json(
            {"id": 131099313, "description": "Canal", "date_taken": "2006-04-23 09: 00: 12"}
        ),
        "albums.json": as_json(
            {"albums": [{"title": "Netherlands 2006", "photos": ["131099312", "0", 131099313]}]}
        ),
    }
    parts = [
        write_zip(tmp_path / "72157722185468047_06fxe76mos37_part1.zip", metadata),
        write_zip(
            tmp_path / "data-download-1.zip",
            {"fresh-crop_131099312_o.jpg": jpeg(1), "131099313_9d32d647f1.jpg": jpeg(2)},
        ),
    ]
    found = read_items(iter_export(parts))
    crop = found["fresh-crop_131099312_o.jpg"][0]
    assert (crop.platform, crop.caption, crop.album) == ("flickr", "Fresh crop", "Netherlands 2006")
    assert crop.post_url == "https://www.flickr.com/photos/janedoe/131099312/"
    assert crop.taken_at == utc(2006, 4, 22, 14, 5, 31)
    canal = found["131099313_9d32d647f1.jpg"][0]
    assert (canal.caption, canal.taken_at) == ("Canal", utc(2006, 4, 23, 9, 0, 12))
    assert crop.post_key is None and canal.post_key is None  # each photo is a post of its own
