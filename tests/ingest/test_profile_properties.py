"""Every profile parser against odd API answers and odd pages: no exception other than the
documented ones escapes, and every photo found has an absolute web address."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.ingest.errors import UnreadableLink
from service.ingest.fields import MAX_TEXT
from service.ingest.profiles import bluesky, flickr, mastodon
from service.ingest.profiles.listing import ProfilePhoto
from service.ingest.profiles.page_images import images_of_page, largest_in_srcset

FIELD_NAMES = """
post author did handle labels val reason record text createdAt indexedAt embed $type images
fullsize thumb alt items thumbnail media uri id visibility reblog content media_attachments type
url remote_url preview_url description created_at account title datetaken pathalias url_o url_l
_content
"""
FIELDS = FIELD_NAMES.split()
ODD_TEXT = [
    "app.bsky.embed.images#view",
    "app.bsky.embed.video#view",
    "app.bsky.embed.recordWithMedia#view",
    "app.bsky.embed.gallery#view",
    "!no-unauthenticated",
    "did:plc:abc",
    "at://did:plc:abc/app.bsky.feed.post/3k",
    "public",
    "image",
    "gifv",
    "https://cdn.example/a.jpg",
    "http://[::1",
    "javascript:alert(1)",
    "2024-05-13T07:41:12.345Z",
    "2024-13-45T99:99:99Z",
    "9" * 5000,
    "handle.invalid",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=10)
    | st.sampled_from(ODD_TEXT)
)
answers = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=3), inner, max_size=6)
    ),
    max_leaves=40,
)


def well_formed(photos: list[ProfilePhoto]) -> None:
    for photo in photos:
        assert photo.url.startswith(("http://", "https://"))
        provenance = photo.provenance
        assert provenance.taken_at is None or provenance.taken_at.tzinfo is UTC
        assert provenance.caption is None or 0 < len(provenance.caption) <= MAX_TEXT


@settings(max_examples=150, deadline=None)
@given(answers)
def test_it_reads_odd_bluesky_feed_entries(entry: Any) -> None:
    try:
        photos = bluesky.photos_of_entry(
            entry if isinstance(entry, dict) else {"post": entry}, "did:plc:abc"
        )
    except UnreadableLink:
        return  # the account asked not to be shown
    well_formed(photos)


@settings(max_examples=150, deadline=None)
@given(answers)
def test_it_reads_odd_mastodon_statuses(status: Any) -> None:
    well_formed(
        mastodon.photos_of_status(
            status if isinstance(status, dict) else {"media_attachments": status}
        )
    )


@settings(max_examples=100, deadline=None)
@given(answers)
def test_it_reads_odd_flickr_entries(entry: Any) -> None:
    photo = flickr.photo_of(entry if isinstance(entry, dict) else {"id": entry}, "12345678@N00")
    well_formed([photo] if photo else [])


tags = st.sampled_from(["img", "source", "meta", "a", "div", "base", "script", "picture", "link"])
attributes = st.sampled_from(
    [
        "src",
        "srcset",
        "data-src",
        "data-srcset",
        "href",
        "property",
        "content",
        "style",
        "type",
        "width",
        "rel",
    ]
)
values = st.text(max_size=30) | st.sampled_from(
    [*ODD_TEXT, "og:image", "a.jpg 9999999999999w", "url(x.jpg)"]
)
elements = st.builds(
    lambda tag, attrs, text: f"<{tag} " + " ".join(f'{k}="{v}"' for k, v in attrs) + f">{text}",
    tags,
    st.lists(st.tuples(attributes, values), max_size=4),
    st.text(max_size=20),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(elements | st.text(max_size=40), max_size=12),
    st.sampled_from(["https://friend.example/a/", "https://x"]),
)
def test_it_reads_odd_pages(parts: list[str], page_url: str) -> None:
    page = images_of_page("".join(parts), page_url)
    assert len({image.url for image in page.images}) == len(page.images)
    assert all(image.url.startswith(("http://", "https://")) for image in page.images)


@given(st.text())
def test_it_reads_any_srcset(srcset: str) -> None:
    largest = largest_in_srcset(srcset)
    assert largest is None or (largest and " " not in largest)


def test_it_ignores_a_base_href_that_is_no_url() -> None:
    # Found by the property test above: urllib raises on an unbalanced "[" ("Invalid IPv6 URL").
    markup = '<base href="A://["><img src="me.jpg"><a href="http://[x/y.jpg">y</a>'
    page = images_of_page(markup, "https://friend.example/a/")
    assert [image.url for image in page.images] == ["https://friend.example/a/me.jpg"]
