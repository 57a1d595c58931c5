"""Friends' data exports in each platform's real layout (see /work/shared/FORMATS.md), built around
the photos a test gives: two of the owner and one without them."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

from tests.ingest.builders import Files, as_json, meta_json, under, unix


@dataclass(frozen=True)
class Photos:
    owner: bytes  # the owner's face, small
    owner_again: bytes  # the owner's face, another photo
    other: bytes  # people or things that are not the owner


FB_MEDIA = "your_facebook_activity/posts/media"
FB_POSTS = "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json"


def facebook_2024(photos: Photos) -> Files:
    """Layout A: one post with two photos, one captioned, and a Messenger photo never scanned."""
    timeline = f"{FB_MEDIA}/TimelinePhotos_8f3kQ2xZ"
    post = {
        "timestamp": unix(2024, 5, 1, 10),
        "title": "Jane Doe added 2 new photos.",
        "data": [{"post": "Café by the river 🌅"}, {"update_timestamp": unix(2024, 5, 1, 10)}],
        "attachments": [
            {
                "data": [
                    {
                        "media": {
                            "uri": f"{timeline}/431122334_10160012345678901_n.jpg",
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
                            "uri": f"{timeline}/431122335_10160012345678902_n.jpg",
                            "creation_timestamp": unix(2024, 5, 1, 9, 1),
                            "title": "Timeline photos",
                        }
                    },
                ]
            },
            {"data": [{"place": {"name": "Pont Neuf"}}]},
        ],
    }
    return {
        "personal_information/profile_information/profile_information.json": meta_json(
            {"profile_v2": {"name": {"full_name": "Jane Doe"}}}
        ),
        FB_POSTS: meta_json([post]),
        f"{timeline}/431122334_10160012345678901_n.jpg": photos.owner,
        f"{timeline}/431122335_10160012345678902_n.jpg": photos.owner_again,
        f"{FB_MEDIA}/MobileUploads_x1/666_n_6.jpg": photos.other,
        "your_facebook_activity/messages/inbox/bob_1/photos/777_n_7.jpg": photos.owner,
    }


def facebook_html(photos: Photos) -> Files:
    """A Facebook export requested in HTML format: no JSON to say where anything was posted."""
    return {
        FB_POSTS.removesuffix(".json") + ".html": b"<html><body>posts</body></html>",
        "personal_information/profile_information/profile_information.html": b"<html></html>",
        f"{FB_MEDIA}/your_posts/1_n_1.jpg": photos.owner,
    }


def facebook_older(photos: Photos) -> Files:
    """Layout B (2019-2023) with its `photos_and_videos/` albums, re-zipped under a top folder."""
    album_folder = "photos_and_videos/Sommer2019_hdLt_Gppqg"
    files = {
        "profile_information/profile_information.json": meta_json(
            {"profile_v2": {"name": {"full_name": "Jana Müller"}}}
        ),
        "posts/your_posts_1.json": meta_json(
            [
                {
                    "timestamp": unix(2019, 7, 1, 16),
                    "data": [{"post": "Sommerfest in Köln 🎉"}],
                    "attachments": [
                        {"data": [{"media": {"uri": "posts/media/your_posts/1_n_1.jpg"}}]}
                    ],
                }
            ]
        ),
        "photos_and_videos/album/0.json": meta_json(
            {
                "name": "Sommer 2019",
                "last_modified_timestamp": unix(2019, 8, 4),
                "photos": [
                    {
                        "uri": f"{album_folder}/534246_556509764412644_n.jpg",
                        "creation_timestamp": unix(2019, 8, 3, 15),
                        "description": "Grillen am Rhein, schön war’s",
                    },
                    {
                        "uri": f"{album_folder}/534247_556509764412645_n.jpg",
                        "creation_timestamp": unix(2019, 8, 3, 15, 5),
                    },
                ],
            }
        ),
        "posts/media/your_posts/1_n_1.jpg": photos.owner,
        f"{album_folder}/534246_556509764412644_n.jpg": photos.owner_again,
        f"{album_folder}/534247_556509764412645_n.jpg": photos.other,
    }
    return under("facebook-janamueller", files)


def instagram(photos: Photos) -> Files:
    """The 2025 layout: posts indexed in `your_instagram_activity/media/`, files in `media/`."""

    def media(uri: str, when: int, title: str = "") -> dict[str, object]:
        return {"uri": uri, "creation_timestamp": when, "title": title}

    posts = [
        {
            "media": [
                media(
                    "media/posts/202405/441234567_17912345_n.jpg",
                    unix(2024, 5, 6, 19, 30),
                    "Sunset 🌅 with Zoë",
                )
            ]
        },
        {
            "title": "Weekend in Lyon, ça va ?",
            "creation_timestamp": unix(2024, 5, 7, 10),
            "media": [
                media("media/posts/202405/17900000000000001.jpg", unix(2024, 5, 7, 10)),
                media("media/posts/202405/17900000000000002.jpg", unix(2024, 5, 7, 10)),
            ],
        },
    ]
    profile = {"profile_user": [{"string_map_data": {"Username": {"value": "jane_doe"}}}]}
    return {
        "personal_information/personal_information/personal_information.json": meta_json(profile),
        "your_instagram_activity/media/posts_1.json": meta_json(posts),
        "media/posts/202405/441234567_17912345_n.jpg": photos.owner,
        "media/posts/202405/17900000000000001.jpg": photos.owner_again,
        "media/posts/202405/17900000000000002.jpg": photos.other,
    }


TAKEOUT_YEAR = "Takeout/Google Photos/Photos from 2019"
TAKEOUT_ALBUM = "Takeout/Google Photos/Trip to Lisbon"


def google_sidecar(title: str, taken: int, description: str, url: str) -> bytes:
    return as_json(
        {
            "title": title,
            "description": description,
            "imageViews": "3",
            "creationTime": {"timestamp": str(taken + 600), "formatted": "..."},
            "photoTakenTime": {"timestamp": str(taken), "formatted": "..."},
            "geoData": {"latitude": 38.7223, "longitude": -9.1393, "altitude": 40.5},
            "url": url,
            "googlePhotosOrigin": {"mobileUpload": {"deviceType": "ANDROID_PHONE"}},
        }
    )


def google_takeout(photos: Photos) -> Files:
    """Year folder with both sidecar namings; an album holding a copy of one photo."""
    first = google_sidecar(
        "IMG_20190111_231110.jpg",
        unix(2019, 1, 11, 23, 11, 10),
        "Lisbon, first evening",
        "https://photos.google.com/photo/AF1QipOwnerFirstEvening",
    )
    return {
        f"{TAKEOUT_YEAR}/IMG_20190111_231110.jpg": photos.owner,
        f"{TAKEOUT_YEAR}/IMG_20190111_231110.jpg.supplemental-metadata.json": first,
        f"{TAKEOUT_YEAR}/PXL_20190112_101500.jpg": photos.owner_again,
        f"{TAKEOUT_YEAR}/PXL_20190112_101500.jpg.json": google_sidecar(
            "PXL_20190112_101500.jpg",
            unix(2019, 1, 12, 10, 15),
            "",
            "https://photos.google.com/photo/AF1QipOwnerTram",
        ),
        f"{TAKEOUT_YEAR}/IMG_20190113_090000.jpg": photos.other,
        f"{TAKEOUT_YEAR}/IMG_20190113_090000.jpg.supplemental-metadat.json": google_sidecar(
            "IMG_20190113_090000.jpg",
            unix(2019, 1, 13, 9),
            "Friends",
            "https://photos.google.com/photo/AF1QipFriends",
        ),
        f"{TAKEOUT_ALBUM}/metadata.json": as_json(
            {
                "title": "Trip to Lisbon",
                "description": "",
                "access": "protected",
                "date": {"timestamp": str(unix(2019, 1, 14)), "formatted": "..."},
            }
        ),
        f"{TAKEOUT_ALBUM}/IMG_20190111_231110.jpg": photos.owner,
        f"{TAKEOUT_ALBUM}/IMG_20190111_231110.jpg.supplemental-metadata.json": first,
        "Takeout/archive_browser.html": b"<html></html>",
    }


X_TWEET = "1790000000000000001"  # more than 2**53, as X ids are


def _js(global_name: str, value: object) -> bytes:
    return f"{global_name} = {json.dumps(value, indent=1)};\n".encode()


def _tweet(tweet_id: str, when: str, text: str, media_name: str) -> dict[str, object]:
    photo = {
        "id_str": str(int(tweet_id) + 1),
        "type": "photo",
        "url": "https://t.co/AbCdEf1234",
        "media_url_https": f"https://pbs.twimg.com/media/{media_name}.jpg",
        "expanded_url": f"https://x.com/jane_doe/status/{tweet_id}/photo/1",
    }
    body = {
        "id_str": tweet_id,
        "id": tweet_id,
        "created_at": when,
        "full_text": text,
        "entities": {"media": [photo]},
        "extended_entities": {"media": [photo]},
    }
    return {"tweet": body}


def x_archive(photos: Photos) -> Files:
    """`data/*.js` files and `data/tweets_media/<tweet id>-<media name>`; a DM photo not scanned."""
    tweets = [
        _tweet(
            X_TWEET,
            "Mon May 13 18:22:05 +0000 2024",
            "Fish &amp; chips at the harbour https://t.co/AbCdEf1234",
            "GNxYzAbWcAAq1Rz",
        ),
        _tweet(
            "1790000000000000100",
            "Tue May 14 08:00:00 +0000 2024",
            "Walkies https://t.co/AbCdEf1234",
            "GNdogsAbWcAAq1R",
        ),
    ]
    return {
        "Your archive.html": b"<html></html>",
        "data/manifest.js": _js(
            "window.__THAR_CONFIG", {"userInfo": {"accountId": "42", "userName": "jane_doe"}}
        ),
        "data/account.js": _js(
            "window.YTD.account.part0", [{"account": {"accountId": "42", "username": "jane_doe"}}]
        ),
        "data/tweets.js": _js("window.YTD.tweets.part0", tweets),
        f"data/tweets_media/{X_TWEET}-GNxYzAbWcAAq1Rz.jpg": photos.owner,
        "data/tweets_media/1790000000000000100-GNdogsAbWcAAq1R.jpg": photos.other,
        "data/direct_messages_media/555-dm.jpg": photos.owner_again,
    }


MASTODON_POST = "https://mastodon.example/@jane/112233445566778891"


def mastodon_archive(photos: Photos) -> Files:
    """outbox.json, actor.json and `media_attachments/`: a public post, a followers-only post,
    a private mention (never scanned) and the avatar."""
    public = "https://www.w3.org/ns/activitystreams#Public"

    def note(number: int, to: list[str], text: str) -> dict[str, object]:
        status = f"11223344556677889{number}"
        return {
            "id": f"https://mastodon.example/users/jane/statuses/{status}/activity",
            "type": "Create",
            "actor": "https://mastodon.example/users/jane",
            "published": f"2024-05-1{number}T07:41:12Z",
            "to": to,
            "object": {
                "id": f"https://mastodon.example/users/jane/statuses/{status}",
                "type": "Note",
                "url": f"https://mastodon.example/@jane/{status}",
                "published": f"2024-05-1{number}T07:41:12Z",
                "content": f"<p>{text}</p>",
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
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "outbox.json",
        "type": "OrderedCollection",
        "orderedItems": [
            note(1, [public], "Low tide &amp; a pier"),
            note(2, ["https://mastodon.example/users/jane/followers"], "Friends only"),
            note(3, ["https://other.example/users/bob"], "A private mention"),
            {"type": "Announce", "object": "https://other.example/users/bob/statuses/998877"},
        ],
    }
    return {
        "outbox.json": as_json(outbox),
        "actor.json": as_json({"icon": {"url": "avatar.jpg"}, "image": {"url": "header.jpg"}}),
        "avatar.jpg": photos.owner_again,
        "media_attachments/files/112/233/441/original/1.jpg": photos.owner,
        "media_attachments/files/112/233/442/original/2.jpg": photos.other,
        "media_attachments/files/112/233/443/original/3.jpg": photos.owner,
    }


FLICKR_PAGE = "https://www.flickr.com/photos/janedoe/131099312/"


def flickr_export(photos: Photos) -> Files:
    """The metadata part and a media part, as downloaded, zipped together by the friend."""
    metadata = {
        "account_profile.json": as_json({"nsid": "12345678@N00", "real_name": "Jane Doe"}),
        "photo_131099312.json": as_json(
            {
                "id": "131099312",
                "name": "Fresh crop",
                "description": "",
                "date_taken": "2006-04-22 14:05:31",
                "date_imported": "2006-04-23 09:00:12",
                "photopage": FLICKR_PAGE,
                "privacy": "public",
                "albums": [{"id": "72157600000000001", "title": "Netherlands 2006"}],
            }
        ),
        "photo_131099313.json": as_json(
            {
                "id": "131099313",
                "name": "Canal",
                "date_taken": "2006-04-23 09:00:12",
                "photopage": "https://www.flickr.com/photos/janedoe/131099313/",
            }
        ),
        "albums.json": as_json(
            {
                "albums": [
                    {
                        "id": "72157600000000001",
                        "title": "Netherlands 2006",
                        "photos": ["131099312", "131099313"],
                    }
                ]
            }
        ),
    }
    media = {
        "fresh-crop_131099312_o.jpg": photos.owner,
        "canal_131099313_o.jpg": photos.other,
    }
    return {
        "72157722185468047_06fxe76mos37_part1.zip": zip_bytes(metadata),
        "data-download-1.zip": zip_bytes(media),
    }


def folders_of_photos(photos: Photos) -> Files:
    """Not an export at all: folders of photos a friend zipped themselves."""
    return {
        "Holiday 2019/IMG_0001.jpg": photos.owner,
        "Holiday 2019/IMG_0002.jpg": photos.other,
        "Holiday 2019/notes.txt": b"ferry at 9",
    }


def zip_bytes(files: Files) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()
