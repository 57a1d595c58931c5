"""The checklist lists posts: the photos of one post (a carousel) are one item, answered at once,
through the API and the page; photos without a post stay an item each."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service import checklist
from service.tables import Friend, Match
from tests import test_checklist
from tests.test_checklist import (
    T0,
    Circle,
    _confirm,
    _mails,
    _remind,
    _send_at,
    add_friend,
    add_matches,
)

# Alice and Dana, who accepted; three Facebook photos of no known post wait for Alice's review.
circle = test_checklist.circle

CAROUSEL = "instagram:media/posts/202405/17900000000000001.jpg"


def _add(circle: Circle, *photos: dict[str, Any], friend_id: int | None = None) -> list[int]:
    """Matches of one more scan of Dana's (or another friend's), a month old."""
    when = {"taken_at": T0 - timedelta(days=30)}
    photos = tuple(when | photo for photo in photos)
    return add_matches(circle.db, friend_id or circle.friend_id, 1, *photos)


def _carousel(circle: Circle) -> list[int]:
    """An Instagram carousel of two photos, both confirmed."""
    ids = _add(
        circle,
        *(
            {
                "photo": f"media/posts/202405/1790000000000000{n}.jpg",
                "platform": "instagram",
                "caption": "Weekend in Lyon",
                "post_key": CAROUSEL,
            }
            for n in (1, 2)
        ),
    )
    _confirm(circle, *ids)
    return ids


def _logged_in(circle: Circle) -> TestClient:
    """Alice's browser, logged in to her pages."""
    browser = TestClient(circle.client.app, follow_redirects=False)
    browser.get("/login")
    login = {
        "email": "alice@example.org",
        "password": "correct horse battery",
        "csrf_token": browser.cookies.get("csrf"),
    }
    assert browser.post("/login", data=login).status_code == 303
    return browser


def _checklist(circle: Circle) -> list[dict[str, Any]]:
    answer = circle.client.get(f"/api/v1/invites/{circle.token}/checklist")
    assert answer.status_code == 200
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _statuses(circle: Circle) -> dict[int, str]:
    """What Alice sees of each match: the friend's answer."""
    answer = circle.client.get(f"/api/v1/friends/{circle.friend_id}/matches", headers=circle.alice)
    return {m["id"]: m["status"] for m in answer.json()}


def test_it_lists_a_carousel_as_one_item_with_both_photos(circle: Circle) -> None:
    first, second = _carousel(circle)
    _confirm(circle, circle.matches[0])
    items = _checklist(circle)
    assert len(items) == 2  # the carousel, and the Facebook photo
    [post] = [item for item in items if item["platform"] == "instagram"]
    assert post["id"] == first  # the post's earliest match
    assert [p["match_id"] for p in post["photos"]] == [first, second]
    assert post["photo"] == post["photos"][0]["photo"]
    assert post["thumbnail_url"] == post["photos"][0]["thumbnail_url"]
    assert post["owner_names"] == ["Alice"] and post["caption"] == "Weekend in Lyon"
    for photo in post["photos"]:
        picture = circle.client.get(photo["thumbnail_url"])
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    [single] = [item for item in items if item["platform"] == "facebook"]
    assert [p["match_id"] for p in single["photos"]] == [circle.matches[0]]


def test_it_answers_every_photo_of_a_post_at_once(circle: Circle) -> None:
    first, second = _carousel(circle)
    answer = circle.client.post(
        f"/api/v1/invites/{circle.token}/checklist/{first}", json={"status": "removed"}
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "removed" and len(answer.json()["photos"]) == 2
    assert {_statuses(circle)[m] for m in (first, second)} == {"removed"}
    [post] = _checklist(circle)
    assert post["status"] == "removed"
    # Any photo of the post finds it: a link to the second photo answers the post too.
    circle.client.post(
        f"/api/v1/invites/{circle.token}/checklist/{second}", json={"status": "private"}
    )
    assert {_statuses(circle)[m] for m in (first, second)} == {"private"}


def test_it_keeps_the_item_id_when_more_photos_of_the_post_are_confirmed(circle: Circle) -> None:
    first, second = _add(
        circle,
        *({"photo": f"{n}.jpg", "platform": "instagram", "post_key": CAROUSEL} for n in (1, 2)),
    )
    _confirm(circle, first)
    assert [item["id"] for item in _checklist(circle)] == [first]
    [third] = _add(circle, {"photo": "3.jpg", "platform": "instagram", "post_key": CAROUSEL})
    _confirm(circle, second, third)  # one found later, in another upload
    [post] = _checklist(circle)
    assert post["id"] == first and [p["match_id"] for p in post["photos"]] == [first, second, third]


def test_it_gathers_the_photos_of_one_post_url(circle: Circle) -> None:
    url = "https://mastodon.example/@dana/112233"
    ids = _add(
        circle,
        {"photo": "https://files.example/1.jpg", "platform": "mastodon", "post_url": url},
        {"photo": "https://files.example/2.jpg", "platform": "mastodon", "post_url": url},
        {"photo": "https://files.example/3.jpg", "platform": "mastodon", "post_url": url + "4"},
    )
    _confirm(circle, *ids)
    items = _checklist(circle)
    assert [[p["match_id"] for p in item["photos"]] for item in items] == [ids[:2], ids[2:]]
    assert items[0]["post_url"] == url


def test_it_keeps_photos_without_a_post_one_item_each(circle: Circle) -> None:
    _confirm(circle, *circle.matches)
    items = _checklist(circle)
    assert sorted(item["id"] for item in items) == sorted(circle.matches)
    assert all(len(item["photos"]) == 1 for item in items)


def test_it_gives_a_post_a_photo_found_again_outside_it(circle: Circle) -> None:
    """The same file met twice (in a post, and in a folder of no post) is one item."""
    [in_post] = _add(circle, {"photo": "posts/1.jpg", "platform": "facebook", "post_key": "fb:1"})
    [loose] = _add(circle, {"photo": "album/1.jpg", "platform": "facebook"})
    with Session(circle.db) as session:
        session.get_one(Match, loose).photo_digest = session.get_one(Match, in_post).photo_digest
        session.commit()
    _confirm(circle, in_post, loose)
    [post] = _checklist(circle)
    assert post["id"] == in_post and len(post["photos"]) == 1  # shown once
    circle.client.post(f"/api/v1/invites/{circle.token}/checklist/{loose}", json={"status": "keep"})
    assert {_statuses(circle)[m] for m in (in_post, loose)} == {"keep"}


def test_it_counts_posts_for_the_friend_and_the_owner(circle: Circle) -> None:
    _carousel(circle)
    _confirm(circle, *circle.matches)
    sent = circle.client.post(
        f"/api/v1/friends/{circle.friend_id}/checklist/send", headers=circle.alice
    ).json()
    assert (sent["items"], sent["open_items"]) == (4, 4)  # 5 photos in 4 posts
    [mail] = _mails(circle, "checklist")
    assert mail.subject == "Alice's list: 4 items to take down"
    [friend] = circle.client.get("/api/v1/friends", headers=circle.alice).json()
    assert (friend["matches"], friend["open_items"]) == (5, 4)
    alice = _logged_in(circle)
    assert "0 of 4 items answered." in alice.get(f"/friends/{circle.friend_id}").text
    dashboard = alice.get("/")
    assert dashboard.context["friends"][0][1:] == (5, 4, 4)  # type: ignore[attr-defined]
    assert "0 of 4" in dashboard.text


def test_it_reminds_of_open_posts(circle: Circle) -> None:
    first, _ = _carousel(circle)
    _confirm(circle, circle.matches[0])
    _send_at(circle, T0)
    circle.client.post(f"/api/v1/invites/{circle.token}/checklist/{first}", json={"status": "keep"})
    assert _remind(circle, T0 + timedelta(seconds=10)) == 1
    [reminder] = _mails(circle, "reminder")
    assert "1 of the 2 items" in reminder.text


def test_it_mails_again_when_a_photo_joins_a_post_already_listed(circle: Circle) -> None:
    first, second = _add(
        circle,
        *({"photo": f"{n}.jpg", "platform": "instagram", "post_key": CAROUSEL} for n in (1, 2)),
    )
    _confirm(circle, first)
    _send_at(circle, T0)
    _confirm(circle, second)  # the same one item, with one more photo in it
    _send_at(circle, T0 + timedelta(seconds=5))
    assert len(_mails(circle, "checklist")) == 2


def test_it_shows_a_post_as_one_card_and_answers_it_from_the_page(circle: Circle) -> None:
    first, second = _carousel(circle)
    page = circle.client.get(f"/checklist/{circle.token}")
    assert page.template.name == "checklist.html"  # type: ignore[attr-defined]
    [card] = re.findall(
        r'<li class="checklist-item[^"]*".*?</li>\s*(?=<li class="checklist|</ol>)', page.text, re.S
    )
    for match_id in (first, second):
        assert f"/api/v1/invites/{circle.token}/checklist/{match_id}/thumbnail" in card
    assert card.count('class="face-box"') == 2  # Alice's face outlined on each photo
    assert "That’s not Alice" in card and "a post of 2 photos" in card
    assert "button--primary" not in card and "✓" not in card  # nothing drawn as chosen yet
    # The steps once, above the list, folded.
    assert page.text.count('id="how-to-instagram"') == 1
    assert re.search(r'<details class="how-to" id="how-to-instagram">', page.text)
    csrf = circle.client.cookies.get("csrf")
    answer = circle.client.post(
        f"/checklist/{circle.token}/items/{second}",
        data={"status": "not_me", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith(f"#item-{first}")
    assert {_statuses(circle)[m] for m in (first, second)} == {"not_me"}
    page = circle.client.get(f"/checklist/{circle.token}")
    assert "checklist-item--not_me" in page.text
    assert "Your answer: That’s not Alice." in page.text
    chosen = re.findall(
        r'<button[^>]*button--primary[^>]*aria-pressed="true">(.*?)</button>', page.text, re.S
    )
    [button] = chosen  # the answer given, and only it, drawn as chosen, with a check mark
    assert "✓" in button and re.sub(r"<[^>]+>|✓", "", button).strip() == "That’s not Alice"


def test_it_finds_no_item_of_another_friends_list(circle: Circle) -> None:
    _carousel(circle)
    erin_id = add_friend(circle, "Erin")
    theirs = _add(
        circle,
        *({"photo": f"e{n}.jpg", "platform": "instagram", "post_key": CAROUSEL} for n in (1, 2)),
        friend_id=erin_id,
    )
    _confirm(circle, *theirs)  # the very same post key, on Erin's list
    circle.client.get(f"/checklist/{circle.token}")
    form = {"status": "keep", "csrf_token": circle.client.cookies.get("csrf")}
    for match_id in theirs:
        base = f"/api/v1/invites/{circle.token}/checklist/{match_id}"
        assert circle.client.post(base, json={"status": "keep"}).status_code == 404
        assert circle.client.get(f"{base}/thumbnail").status_code == 404
        page = circle.client.post(f"/checklist/{circle.token}/items/{match_id}", data=form)
        assert page.status_code == 404
    assert [len(item["photos"]) for item in _checklist(circle)] == [2]  # Dana's own two only
    with Session(circle.db) as session:
        rows = session.exec(select(Match).where(Match.friend_id == erin_id)).all()
        assert {row.status for row in rows} == {"open"}


def test_it_tells_the_status_of_a_post_from_its_photos(circle: Circle) -> None:
    first, _ = _carousel(circle)
    with Session(circle.db) as session:
        session.get_one(Match, first).status = "removed"  # a re-check saw one photo gone
        session.commit()
        items = checklist.items_of(session, session.get_one(Friend, circle.friend_id))
        assert [item.status for item in items] == ["open"]  # open while any photo is
        assert checklist.open_count(items) == 1
