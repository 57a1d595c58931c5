"""Scanning again: only new photos are proposed, and a face the owner rejected stays rejected."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests import test_ingest_api
from tests.friend_exports import Photos
from tests.platform_stand_ins import MASTODON_ACCOUNT, _status
from tests.test_api_journey import wait_for_scan
from tests.test_ingest_api import Service, invite

# The same owner, platforms and photos as the ingestion tests (module-scoped fixtures).
service = test_ingest_api.service
photos = test_ingest_api.photos


def _share(client: TestClient, token: str, link: str) -> dict:
    queued = client.post(f"/api/v1/invites/{token}/profiles", json={"url": link})
    assert queued.status_code == 202, queued.text
    return wait_for_scan(client, token, queued.json()["scan_id"], timeout=60)


def _matches(on: Service, friend_id: int) -> list[dict]:
    return on.client.get(f"/api/v1/friends/{friend_id}/matches", headers=on.alice).json()


def test_it_proposes_only_new_posts_when_a_profile_is_scanned_again(
    service: Service,
    photos: Photos,
) -> None:
    site, client = service.site, service.client
    link = f"{site.url}/@jane"
    friend_id, token = invite(service, "Rui")
    assert _share(client, token, link)["matches"] == 1
    [first] = _matches(service, friend_id)

    # Nothing new on the profile: a second scan proposes nothing again.
    again = _share(client, token, link)
    assert again["status"] == "done" and again["matches"] == 0

    # A new public post with the owner: only it is proposed.
    statuses = [_status(site, n, "public", f"<p>post {n}</p>") for n in (4, 1, 2)]
    site.json(f"/api/v1/accounts/{MASTODON_ACCOUNT}/statuses", statuses)
    site.file("/system/media/original/4.jpg", photos.owner_again)
    third = _share(client, token, link)
    assert third["matches"] == 1
    found = _matches(service, friend_id)
    assert sorted(m["photo"] for m in found) == sorted(
        [first["photo"], f"{site.url}/system/media/original/4.jpg"]
    )


def test_it_remembers_a_face_the_owner_rejected(service: Service, photos: Photos) -> None:
    site, client = service.site, service.client
    friend_id, token = invite(service, "Ivo")
    assert _share(client, token, f"{site.url}/@jane")["matches"] >= 1
    for match in _matches(service, friend_id):
        client.post(
            f"/api/v1/matches/{match['id']}/review",
            headers=service.alice,
            json={"decision": "rejected"},
        )
    # Another friend posts the very same photos: the rejected face is not proposed to the owner.
    other_id, other_token = invite(service, "Noor")
    scan = _share(client, other_token, f"{site.url}/@jane")
    assert scan["status"] == "done" and scan["photos_done"] >= 1
    assert _matches(service, other_id) == []
