"""What the owner hears, by mail, as things happen: a friend accepted or declined, a scan has
photos to review, a friend answered or finished their list, a removal was seen on the web; and
the weekly digest. Each is one mail per event (its key names the event, never the clock), and
the owner may mute any kind on their account page."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session

from service.notify.mail import compose
from service.posts import PLATFORMS, Post
from service.tables import Friend, OutgoingMail, Owner

# Each kind the owner may mute, and how the account page names it.
NOTICES = {
    "friend_answered": "when a friend accepts or declines your invitation",
    "scan_done": "when a friend's photos have matches for you to review",
    "list_answered": "when a friend answers photos on their list (at most once a day each)",
    "list_finished": "when a friend has answered every photo on their list",
    "removal_verified": "when we see that a photo of you is gone from the web",
    "digest": "a weekly digest of your friends' answers, photo by photo",
}
# A friend's answer on one photo, and in a tally of a whole list.
ANSWERED = {
    "removed": "removed",
    "private": "made private",
    "keep": "would rather keep it",
    "not_me": "says it is not you",
    "open": "open again",
}
TALLIED = {"removed": "removed", "private": "made private", "keep": "kept", "not_me": "not you"}
CAPTION_WORDS = 60  # characters of a caption that recall the photo


def hears(owner: Owner, notice: str) -> bool:
    return notice not in (owner.muted or [])


def day(when: datetime) -> str:
    """A date as the pages show it: "3 March 2019"."""
    return f"{when.day} {when:%B %Y}"


def photo_words(item: Post) -> str:
    """A post as a person recalls it: where, when, its album and how its caption begins. Never
    the file's path in the export ("media/posts/201903/1797.jpg"), which says nothing."""
    first = item.first
    words = [PLATFORMS.get(first.platform, "A photo")]
    if first.taken_at:
        words.append(day(first.taken_at))
    if first.album:
        words.append(f"album “{first.album}”")
    if len(item.photos) > 1:
        words.append(f"{len(item.photos)} photos")
    caption = next((m.caption for m in item.matches if m.caption), None)
    if caption:
        words.append(f"“{excerpt(caption)}”")
    elif len(words) == 1 and first.platform not in PLATFORMS:
        words.append(f"named {first.photo.rstrip('/').rsplit('/', 1)[-1]}")  # nothing else tells
    return ", ".join(words)


def excerpt(text: str) -> str:
    """The start of a caption, on one line, cut between words."""
    flat = " ".join(text.split())
    if len(flat) <= CAPTION_WORDS:
        return flat
    return flat[:CAPTION_WORDS].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def tally(counts: Mapping[str, int]) -> str:
    """A finished list in words: "5 removed, 1 made private, 1 kept"."""
    return ", ".join(f"{counts[a]} {words}" for a, words in TALLIED.items() if counts.get(a))


def answer_lines(items: list[Post]) -> list[dict[str, str]]:
    return [{"photo": photo_words(item), "answer": ANSWERED[item.status]} for item in items]


def friend_url(base_url: str, friend: Friend, part: str = "") -> str:
    """The friend's page on the owner's side (`part`: "#checklist", to land on the list)."""
    return f"{base_url.rstrip('/')}/friends/{friend.id}{part}"


def _to_owner(
    session: Session,
    owner: Owner | None,
    notice: str,
    *,
    kind: str | None = None,
    key: str,
    **context: object,
) -> OutgoingMail | None:
    """A mail to the owner about one event (`kind`, by default the notice's own), unless they
    muted that notice. It is the owner's: it stays when the friend withdraws (no friend_id)."""
    if owner is None or owner.id is None or not hears(owner, notice):
        return None
    return compose(
        session,
        kind=kind or notice,
        key=key,
        to=owner.email,
        owner_id=owner.id,
        friend_id=None,
        context={"owner_name": owner.name, **context},
    )


def friend_answered(
    session: Session, base_url: str, friend: Friend, accepted: bool, number: int
) -> OutgoingMail | None:
    """`number`: which answer of this friend this is (an answer changed is a new mail)."""
    return _to_owner(
        session,
        session.get(Owner, friend.owner_id),
        "friend_answered",
        kind="friend_accepted" if accepted else "friend_declined",
        key=f"friend-answered:{friend.id}:{number}",
        friend_name=friend.name,
        friend_url=friend_url(base_url, friend),
        withdrawn=friend.status == "withdrawn",
    )


def scan_done(
    session: Session, base_url: str, owner_id: int, friend: Friend, scan_id: int, found: int
) -> OutgoingMail | None:
    """The owner's photos found in one scan of a friend's, waiting for review."""
    if not found:
        return None
    return _to_owner(
        session,
        session.get(Owner, owner_id),
        "scan_done",
        key=f"scan-done:{scan_id}:{owner_id}",
        friend_name=friend.name,
        found=found,
        review_url=friend_url(base_url, friend),
    )


def list_answered(
    session: Session,
    base_url: str,
    owner: Owner,
    friend: Friend,
    answered: list[Post],
    still_open: int,
    newest: int,
) -> OutgoingMail | None:
    """The photos a friend answered since the owner last heard of their list; `newest`: the
    audit id of the last answer told (the same answers are never a second mail)."""
    if not answered:
        return None
    return _to_owner(
        session,
        owner,
        "list_answered",
        key=f"list-answered:{friend.id}:{newest}",
        friend_name=friend.name,
        count=len(answered),
        open=still_open,
        answers=answer_lines(answered),
        list_url=friend_url(base_url, friend, "#checklist"),
    )


def list_finished(
    session: Session,
    base_url: str,
    owner: Owner,
    friend: Friend,
    counts: Mapping[str, int],
    newest: int,
) -> OutgoingMail | None:
    """Every photo on the friend's list has an answer; `newest` as for list_answered (a list
    finished again, after new photos went on it, is a new mail)."""
    return _to_owner(
        session,
        owner,
        "list_finished",
        key=f"list-finished:{friend.id}:{newest}",
        friend_name=friend.name,
        tally=tally(counts),
        list_url=friend_url(base_url, friend, "#checklist"),
    )


def removal_verified(
    session: Session,
    base_url: str,
    owner: Owner,
    friend: Friend,
    item: Post,
    checked: datetime,
    number: int,
) -> OutgoingMail | None:
    """A post's public photos no longer show on the web. `number`: which removal of the photo
    that completed it this is (a photo that comes back and goes again is told again)."""
    return _to_owner(
        session,
        owner,
        "removal_verified",
        key=f"removal-verified:{item.id}:{number}",
        friend_name=friend.name,
        photo=photo_words(item),
        checked_on=day(checked),
        list_url=friend_url(base_url, friend, "#checklist"),
    )


def digest(
    session: Session,
    base_url: str,
    owner: Owner,
    answered: list[tuple[Friend, list[Post]]],
    newest: int,
) -> OutgoingMail | None:
    """The answers of a week, friend by friend, each photo in words with a link to the list.
    `newest`: the audit id of the last answer it covers (never two digests of the same)."""
    if not answered:
        return None
    return _to_owner(
        session,
        owner,
        "digest",
        key=f"digest:{owner.id}:{newest}",
        count=sum(len(items) for _, items in answered),
        friends=[
            {
                "name": friend.name,
                "answers": answer_lines(items),
                "url": friend_url(base_url, friend, "#checklist"),
            }
            for friend, items in answered
        ],
        dashboard_url=f"{base_url.rstrip('/')}/",
    )
