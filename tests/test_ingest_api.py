"""Every export layout and every profile source, through the JSON API with a real queue and real
faces: the owner is found, and each match says where the friend posted it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests import friend_exports as exports
from tests.conftest import make_settings
from tests.friend_exports import Photos
from tests.ingest.builders import Files, utc, write_tar, write_zip
from tests.ingest.conftest import Site
from tests.platform_stand_ins import BLUESKY_PROFILE, GALLERY, serve_platforms
from tests.test_api_journey import owner_token, wait_for_scan


@dataclass(frozen=True)
class Service:
    client: TestClient
    alice: dict[str, str]  # the owner's API headers; her reference photo is enrolled
    site: Site  # the platforms profile links are read from
    folder: Path


@dataclass(frozen=True)
class Scanned:
    scan: dict[str, Any]
    matches: dict[str, dict[str, Any]]  # by photo
    friend_id: int
    token: str  # the friend's


@pytest.fixture(scope="module")
def photos(faces_dir: Path) -> Photos:
    return Photos(
        owner=(faces_dir / "dev/obama/obama-480p.jpg").read_bytes(),
        owner_again=(faces_dir / "dev/obama/obama-720p.jpg").read_bytes(),
        other=(faces_dir / "dev/_no_human_faces/dogs.jpg").read_bytes(),
    )


@pytest.fixture(scope="module")
def service(
    faces_dir: Path, photos: Photos, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("ingest-api")
    site = Site()
    serve_platforms(site, photos)
    settings = make_settings(folder, allow_private_fetch=True, bluesky_api=site.url)
    try:
        with TestClient(create_app(settings, consume=True)) as client:
            yield Service(client, enrolled_alice(client, faces_dir), site, folder)
    finally:
        site.close()


def enrolled_alice(client: TestClient, faces_dir: Path) -> dict[str, str]:
    """Alice's API headers, her reference photo enrolled."""
    alice = owner_token(client, "alice@example.org", "Alice")
    reference = (faces_dir / "dev/obama/obama.jpg").read_bytes()
    enrolled = client.post(
        "/api/v1/reference-photos",
        headers=alice,
        files={"file": ("me.jpg", reference, "image/jpeg")},
    )
    assert enrolled.status_code == 201, enrolled.text
    return alice


_friends = itertools.count(1)


def invite(service: Service, name: str, *, accept: bool = True) -> tuple[int, str]:
    """A friend of Alice's (their id and invitation token), who has said yes unless told not to."""
    email = f"{name.lower()}.{next(_friends)}@example.org"
    added = service.client.post(
        "/api/v1/friends", headers=service.alice, json={"name": name, "email": email}
    )
    assert added.status_code == 201, added.text
    token = added.json()["invite_url"].rsplit("/", 1)[1]
    if accept:
        consent = service.client.post(f"/api/v1/invites/{token}/consent", json={"accept": True})
        assert consent.status_code == 200
    return added.json()["id"], token


def finished(service: Service, friend_id: int, token: str, scan_id: int) -> Scanned:
    scan = wait_for_scan(service.client, token, scan_id, timeout=60)
    listed = service.client.get(f"/api/v1/friends/{friend_id}/matches", headers=service.alice)
    assert listed.status_code == 200
    return Scanned(scan, {match["photo"]: match for match in listed.json()}, friend_id, token)


def upload(
    service: Service, name: str, files: Files, filename: str, *, tar: bool = False
) -> Scanned:
    """A friend uploads an export and waits for its scan; Alice lists what it found."""
    friend_id, token = invite(service, name)
    write = write_tar if tar else write_zip
    archive = write(service.folder / f"{friend_id}-{filename}", files)
    queued = service.client.post(
        f"/api/v1/invites/{token}/exports",
        files={"file": (filename, archive.read_bytes(), "application/octet-stream")},
    )
    assert queued.status_code == 202, queued.text
    return finished(service, friend_id, token, queued.json()["scan_id"])


def share(service: Service, name: str, link: str) -> Scanned:
    """A friend shares a profile link and waits for its scan; Alice lists what it found."""
    friend_id, token = invite(service, name)
    queued = service.client.post(f"/api/v1/invites/{token}/profiles", json={"url": link})
    assert queued.status_code == 202, queued.text
    return finished(service, friend_id, token, queued.json()["scan_id"])


def when(match: dict[str, Any]) -> datetime | None:
    return None if match["taken_at"] is None else datetime.fromisoformat(match["taken_at"])


def provenance(match: dict[str, Any]) -> tuple[Any, ...]:
    return match["platform"], match["post_url"], when(match), match["caption"]


def assert_found(scanned: Scanned, photos_seen: int, expected: dict[str, tuple[Any, ...]]) -> None:
    """The scan ended well, saw every photo the friend posted, and matched the owner's photos
    (and only those) with where and when each was posted."""
    assert scanned.scan["status"] == "done", scanned.scan
    assert scanned.scan["photos_total"] == scanned.scan["photos_done"] == photos_seen
    assert {photo: provenance(m) for photo, m in scanned.matches.items()} == expected


# --- exports ------------------------------------------------------------------------------------

FB_TIMELINE = f"{exports.FB_MEDIA}/TimelinePhotos_8f3kQ2xZ"


def test_it_finds_the_owner_in_a_facebook_export_with_its_text_repaired(
    service: Service, photos: Photos
) -> None:
    scanned = upload(service, "Fern", exports.facebook_2024(photos), "facebook-fern.zip")
    assert_found(
        scanned,
        3,  # not the photo from private messages
        {
            f"{FB_TIMELINE}/431122334_10160012345678901_n.jpg": (
                "facebook",
                None,
                utc(2024, 4, 30, 18),
                "Ana and me at the café",
            ),
            f"{FB_TIMELINE}/431122335_10160012345678902_n.jpg": (
                "facebook",
                None,
                utc(2024, 5, 1, 9, 1),
                "Café by the river 🌅",
            ),
        },
    )
    assert {m["album"] for m in scanned.matches.values()} == {"Timeline photos"}


def test_it_lists_the_owners_two_photos_of_one_post_as_one_checklist_item(
    service: Service, photos: Photos
) -> None:
    scanned = upload(service, "Gus", exports.facebook_2024(photos), "facebook-gus.zip")
    ids = sorted(m["id"] for m in scanned.matches.values())
    assert len(ids) == 2  # the post's two photos both show Alice
    for match_id in ids:
        review = {"decision": "confirmed"}
        answer = service.client.post(
            f"/api/v1/matches/{match_id}/review", headers=service.alice, json=review
        )
        assert answer.status_code == 200
    checklist = f"/api/v1/invites/{scanned.token}/checklist"
    [item] = service.client.get(checklist).json()["items"]
    assert item["id"] == ids[0] and [p["match_id"] for p in item["photos"]] == ids
    answered = service.client.post(f"{checklist}/{item['id']}", json={"status": "removed"})
    assert answered.status_code == 200
    owner_view = service.client.get(
        f"/api/v1/friends/{scanned.friend_id}/matches", headers=service.alice
    )
    assert [m["status"] for m in owner_view.json()] == ["removed", "removed"]


def test_it_finds_the_owner_in_an_older_facebook_export_zipped_again(
    service: Service, photos: Photos
) -> None:
    scanned = upload(service, "Jana", exports.facebook_older(photos), "facebook-jana.zip")
    album = "facebook-janamueller/photos_and_videos/Sommer2019_hdLt_Gppqg"
    assert_found(
        scanned,
        3,
        {
            "facebook-janamueller/posts/media/your_posts/1_n_1.jpg": (
                "facebook",
                None,
                utc(2019, 7, 1, 16),
                "Sommerfest in Köln 🎉",
            ),
            f"{album}/534246_556509764412644_n.jpg": (
                "facebook",
                None,
                utc(2019, 8, 3, 15),
                "Grillen am Rhein, schön war’s",
            ),
        },
    )
    assert scanned.matches[f"{album}/534246_556509764412644_n.jpg"]["album"] == "Sommer 2019"


def test_it_tells_the_friend_to_request_json_when_facebook_sent_html(
    service: Service, photos: Photos
) -> None:
    scanned = upload(service, "Hal", exports.facebook_html(photos), "facebook-hal.zip")
    assert scanned.scan["status"] == "failed"
    assert "HTML" in scanned.scan["error"] and "JSON" in scanned.scan["error"]
    assert "Download your information" in scanned.scan["error"]
    assert scanned.matches == {}


def test_it_fails_an_export_without_photos_saying_what_it_held_and_what_to_ask_for(
    service: Service,
) -> None:
    # A data-only download: the friend would have read "finished, 0 of 0 photos" as done.
    files = {
        "your_activity/posts.json": b"[]",
        "your_activity/comments.json": b"[]",
        "index.html": b"<html></html>",
    }
    scanned = upload(service, "Nia", files, "data-only.zip")
    assert scanned.scan["status"] == "failed"
    error = scanned.scan["error"]
    assert "This file held 3 files (2 json, 1 html), and no photo." in error
    assert "media quality “High”" in error and "Google Takeout" in error
    assert scanned.matches == {}


def test_it_finds_the_owner_in_an_instagram_export_with_its_captions_repaired(
    service: Service, photos: Photos
) -> None:
    scanned = upload(service, "Ines", exports.instagram(photos), "instagram-ines.zip")
    assert_found(
        scanned,
        3,
        {
            "media/posts/202405/441234567_17912345_n.jpg": (
                "instagram",
                None,
                utc(2024, 5, 6, 19, 30),
                "Sunset 🌅 with Zoë",
            ),
            "media/posts/202405/17900000000000001.jpg": (  # a carousel takes the post's text
                "instagram",
                None,
                utc(2024, 5, 7, 10),
                "Weekend in Lyon, ça va ?",
            ),
        },
    )


def test_it_links_google_takeout_matches_to_google_photos(service: Service, photos: Photos) -> None:
    scanned = upload(
        service,
        "Gil",
        exports.google_takeout(photos),
        "takeout-20240516T230250Z-001.tgz",
        tar=True,
    )
    year = exports.TAKEOUT_YEAR
    assert_found(
        scanned,
        3,  # the album's copy of a photo is the same photo, scanned once
        {
            f"{year}/IMG_20190111_231110.jpg": (
                "google_photos",
                "https://photos.google.com/photo/AF1QipOwnerFirstEvening",
                utc(2019, 1, 11, 23, 11, 10),
                "Lisbon, first evening",
            ),
            f"{year}/PXL_20190112_101500.jpg": (
                "google_photos",
                "https://photos.google.com/photo/AF1QipOwnerTram",
                utc(2019, 1, 12, 10, 15),
                None,
            ),
        },
    )
    assert scanned.matches[f"{year}/IMG_20190111_231110.jpg"]["album"] == "Trip to Lisbon"


def test_it_links_x_archive_matches_to_their_posts(service: Service, photos: Photos) -> None:
    scanned = upload(service, "Xavi", exports.x_archive(photos), "twitter-2024-05-20.zip")
    assert_found(
        scanned,
        2,  # not the photo from direct messages
        {
            f"data/tweets_media/{exports.X_TWEET}-GNxYzAbWcAAq1Rz.jpg": (
                "x",
                f"https://x.com/jane_doe/status/{exports.X_TWEET}",
                utc(2024, 5, 13, 18, 22, 5),
                "Fish & chips at the harbour",
            ),
        },
    )


def test_it_links_mastodon_archive_matches_to_their_posts(service: Service, photos: Photos) -> None:
    scanned = upload(
        service,
        "Mona",
        exports.mastodon_archive(photos),
        "archive-20240520101010-0123456789abcdef0123456789abcdef.tar.gz",
        tar=True,
    )
    assert_found(
        scanned,
        3,  # the avatar and two posts; not the private mention
        {
            "media_attachments/files/112/233/441/original/1.jpg": (
                "mastodon",
                exports.MASTODON_POST,
                utc(2024, 5, 11, 7, 41, 12),
                "Low tide & a pier",
            ),
            "avatar.jpg": ("mastodon", None, None, None),
        },
    )
    assert scanned.matches["avatar.jpg"]["album"] == "Profile picture"


def test_it_reads_a_flickr_export_whose_parts_were_zipped_together(
    service: Service, photos: Photos
) -> None:
    scanned = upload(service, "Flo", exports.flickr_export(photos), "my-flickr-data.zip")
    assert_found(
        scanned,
        2,
        {
            "data-download-1.zip/fresh-crop_131099312_o.jpg": (
                "flickr",
                exports.FLICKR_PAGE,
                utc(2006, 4, 22, 14, 5, 31),
                "Fresh crop",
            ),
        },
    )
    assert scanned.matches["data-download-1.zip/fresh-crop_131099312_o.jpg"]["album"] == (
        "Netherlands 2006"
    )


def test_it_reads_a_plain_zip_of_folders_as_photos_posted_nowhere_known(
    service: Service, photos: Photos
) -> None:
    scanned = upload(service, "Paz", exports.folders_of_photos(photos), "holiday.zip")
    assert_found(scanned, 2, {"Holiday 2019/IMG_0001.jpg": ("other", None, None, None)})


# --- profile links ------------------------------------------------------------------------------


def test_it_finds_the_owner_on_a_mastodon_profile(service: Service) -> None:
    url = service.site.url
    scanned = share(service, "Marta", f"{url}/@jane")
    assert_found(
        scanned,
        2,  # the two public posts, not the unlisted one
        {
            f"{url}/system/media/original/1.jpg": (
                "mastodon",
                f"{url}/@jane/112233445566778891",
                utc(2024, 5, 11, 7, 41, 12),
                "Low tide & a pier",
            ),
        },
    )


def test_it_finds_the_owner_on_a_bluesky_profile(service: Service) -> None:
    image = f"{service.site.url}/img/feed_fullsize/plain/did:plc:u5cwb2mwiv2bfq53cjufe6yn"
    scanned = share(service, "Bea", BLUESKY_PROFILE)
    assert_found(
        scanned,
        2,
        {
            f"{image}/bafkreiowner@jpeg": (
                "bluesky",
                f"{BLUESKY_PROFILE}/post/3k4duaz5vfs2b",
                utc(2024, 5, 13, 7, 41, 12, 345000),
                "Low tide this morning",
            ),
        },
    )


def test_it_finds_the_owner_on_a_web_gallery_page(service: Service) -> None:
    url = service.site.url
    scanned = share(service, "Wren", f"{url}{GALLERY}")
    assert_found(
        scanned,
        2,
        {
            f"{url}/photos/lake.jpg": (  # the largest of the srcset
                "web",
                f"{url}{GALLERY}",
                utc(2024, 6, 1, 10),
                "At the lake",
            ),
        },
    )
    assert scanned.matches[f"{url}/photos/lake.jpg"]["album"] == "Summer 2024 & friends"


@pytest.mark.parametrize(
    ("link", "explained"),
    [
        ("{site}/albums/gone", "not found"),
        ("{site}/albums/empty", "no photos on this page"),
        ("https://www.instagram.com/jane_doe/", "Instagram data export"),
        ("ftp://example.org/photos", "web links"),
    ],
)
def test_it_explains_a_profile_link_it_cannot_read(
    service: Service, link: str, explained: str
) -> None:
    _, token = invite(service, "Lou")
    answer = service.client.post(
        f"/api/v1/invites/{token}/profiles", json={"url": link.format(site=service.site.url)}
    )
    assert answer.status_code == 422
    assert explained in answer.json()["detail"]
    assert service.client.get(f"/api/v1/invites/{token}/scans").json() == []  # nothing queued


def test_it_refuses_a_profile_link_before_the_friend_consents(service: Service) -> None:
    _, token = invite(service, "Ned", accept=False)
    opened = len(service.site.asked(GALLERY))
    answer = service.client.post(
        f"/api/v1/invites/{token}/profiles", json={"url": f"{service.site.url}{GALLERY}"}
    )
    assert answer.status_code == 403
    assert "accept the invitation" in answer.json()["detail"]
    assert len(service.site.asked(GALLERY)) == opened  # the link was not even opened
    assert service.client.get(f"/api/v1/invites/{token}/scans").status_code == 403
