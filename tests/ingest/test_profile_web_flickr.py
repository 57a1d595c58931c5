"""Web gallery pages, Flickr through its API, and links that cannot be read."""

from __future__ import annotations

import pytest

from service.ingest.errors import PhotoReadError, UnreadableLink
from service.ingest.fetch import FetchOptions
from service.ingest.profiles import read_profile
from service.ingest.profiles.page_images import images_of_page, largest_in_srcset
from tests.ingest.builders import as_json, jpeg, utc
from tests.ingest.conftest import Answer, Request, Site

GALLERY = """<!doctype html>
<html><head>
  <base href="/gallery/">
  <title>Summer 2024 &amp; friends</title>
  <meta property="og:image" content="https://cdn.example/og.jpg">
  <meta property="og:image:alt" content="The whole family">
  <meta name="twitter:image" content="/card.jpg">
  <meta property="article:published_time" content="2024-06-01T12:00:00+02:00">
  <link rel="icon" href="/favicon.png">
  <script type="application/ld+json">
    {"@context": "https://schema.org", "@type": "ImageGallery", "image": "ld/two.jpg",
     "associatedMedia": [{"@type": "ImageObject", "contentUrl": "ld/one.jpg"}]}
  </script>
</head><body>
  <img src="small.jpg" srcset="small.jpg 480w, large.jpg 1600w, medium.jpg 800w" alt="At the lake">
  <img src="dense.jpg" srcset="dense.jpg, dense@2x.jpg 2x, dense@3x.jpg 3x">
  <picture><source srcset="pic-800.webp 800w, pic-1200.webp 1200w" type="image/webp">
    <img src="pic.jpg" alt="Picnic"></picture>
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="lazy.jpg" alt="Later">
  <div data-srcset="bg-1.jpg 1x, bg-2.jpg 2x"></div>
  <img src="track.gif" width="1" height="1">
  <img src="/static/icons/logo.png" alt="Logo">
  <img src="sprite.png">
  <noscript><img src="noscript.jpg" alt="No script"></noscript>
  <a href="full/original.JPG">download</a>
  <div style="background-image: url('hero.jpg')"></div>
  <img src="large.jpg" alt="again">
</body></html>"""


def options(**more: object) -> FetchOptions:
    return FetchOptions(allow_private=True, connect_timeout=2, read_timeout=2, **more)  # type: ignore[arg-type]


def test_it_finds_a_pages_photos_by_every_convention_best_first() -> None:
    page = images_of_page(GALLERY, "https://friend.example/albums/summer")
    base = "https://friend.example/gallery/"
    assert [(image.url, image.alt) for image in page.images] == [
        ("https://cdn.example/og.jpg", "The whole family"),
        ("https://friend.example/card.jpg", None),
        (f"{base}large.jpg", "At the lake"),
        (f"{base}dense@3x.jpg", None),
        (f"{base}pic.jpg", "Picnic"),
        (f"{base}noscript.jpg", "No script"),
        (f"{base}pic-1200.webp", None),
        (f"{base}lazy.jpg", "Later"),
        (f"{base}bg-2.jpg", None),
        (f"{base}full/original.JPG", None),
        (f"{base}ld/two.jpg", None),
        (f"{base}ld/one.jpg", None),
        (f"{base}hero.jpg", None),
    ]
    assert (page.title, page.published) == ("Summer 2024 & friends", utc(2024, 6, 1, 10))


@pytest.mark.parametrize(
    ("srcset", "largest"),
    [
        ("a.jpg 480w, b.jpg 1600w", "b.jpg"),
        ("a.jpg, b.jpg 2x", "b.jpg"),
        (
            "https://cdn.example/w_400,h_300/a.jpg 400w, https://cdn.example/w_800/a.jpg 800w",
            "https://cdn.example/w_800/a.jpg",
        ),
        ("only.jpg", "only.jpg"),
        ("", None),
    ],
)
def test_it_picks_the_largest_srcset_candidate(srcset: str, largest: str | None) -> None:
    assert largest_in_srcset(srcset) == largest


def test_it_reads_a_web_gallery_and_links_each_photo_to_the_page(site: Site) -> None:
    page = '<title>Party</title><body><img src="/p/1.jpg" alt="us"><img src="/p/2.jpg"></body>'
    site.file("/party", page.encode(), "text/html")
    site.file("/p/1.jpg", jpeg(1))
    site.route("/p/2.jpg", Answer(404))
    listing = read_profile(f"{site.url}/party", options())
    first, second = list(listing)
    assert (first.platform, first.post_url, first.album, first.caption) == (
        "web",
        f"{site.url}/party",
        "Party",
        "us",
    )
    assert first.read() == jpeg(1)
    assert first.post_key == second.post_key == f"web:{site.url}/party"  # the page is the post
    with pytest.raises(PhotoReadError, match="no longer online"):
        second.read()


def test_it_refuses_a_page_without_photos(site: Site) -> None:
    site.file(
        "/empty", b"<html><body><p>Nothing here</p><img src='data:,'></body></html>", "text/html"
    )
    with pytest.raises(UnreadableLink, match="no photos on this page"):
        read_profile(f"{site.url}/empty", options())


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Answer(404), "not found"),
        (Answer(403), "logged in"),
        (Answer(500), "try again later"),
        (Answer(200, jpeg(1), {"Content-Type": "image/jpeg"}), "not a web page"),
    ],
)
def test_it_explains_a_page_it_cannot_read(site: Site, answer: Answer, message: str) -> None:
    site.route("/page", answer)
    with pytest.raises(UnreadableLink, match=message):
        read_profile(f"{site.url}/page", options())


@pytest.mark.parametrize(
    "link",
    [
        "https://www.instagram.com/jane/",
        "https://facebook.com/jane",
        "https://x.com/jane",
        "https://m.facebook.com/jane",
    ],
)
def test_it_sends_friends_of_closed_platforms_to_their_export(link: str) -> None:
    with pytest.raises(UnreadableLink, match="data export"):
        read_profile(link, FetchOptions())


@pytest.mark.parametrize(
    "link", ["ftp://example.org/photos", "javascript:alert(1)", "", "https://"]
)
def test_it_refuses_links_that_are_not_web_links(link: str) -> None:
    with pytest.raises(UnreadableLink):
        read_profile(link, FetchOptions())


def test_it_asks_for_a_flickr_api_key_when_it_has_none() -> None:
    with pytest.raises(UnreadableLink, match=r"Flickr API key.*Flickr data export"):
        read_profile("https://www.flickr.com/photos/janedoe/", FetchOptions())


def test_it_reads_a_flickr_profile_through_the_api(site: Site) -> None:
    def api(request: Request) -> Answer:
        assert request.query["api_key"] == "k3y"
        if request.query["method"] == "flickr.urls.lookupUser":
            body = {
                "user": {"id": "12345678@N00", "username": {"_content": "janedoe"}},
                "stat": "ok",
            }
        else:
            page = int(request.query["page"])
            photo = {
                "id": f"13109931{page}",
                "title": f"Photo {page}",
                "description": {"_content": ""},
                "datetaken": "2006-04-22 14:05:31",
                "pathalias": "janedoe",
                "url_m": f"{site.url}/m/{page}.jpg",
                "url_l": f"{site.url}/l/{page}.jpg",
            }
            body = {"photos": {"page": page, "pages": "2", "photo": [photo]}, "stat": "ok"}
        return Answer(200, as_json(body), {"Content-Type": "application/json"})

    site.route("/rest/", api)
    for page in (1, 2):
        site.file(f"/l/{page}.jpg", jpeg(page))
    listing = read_profile(
        "https://www.flickr.com/photos/janedoe/",
        options(flickr_api=f"{site.url}/rest/", flickr_api_key="k3y"),
    )
    found = [
        (item.key, item.post_url, item.caption, item.taken_at, item.read()) for item in listing
    ]
    assert found == [
        (
            f"{site.url}/l/1.jpg",
            "https://www.flickr.com/photos/janedoe/131099311/",
            "Photo 1",
            utc(2006, 4, 22, 14, 5, 31),
            jpeg(1),
        ),
        (
            f"{site.url}/l/2.jpg",
            "https://www.flickr.com/photos/janedoe/131099312/",
            "Photo 2",
            utc(2006, 4, 22, 14, 5, 31),
            jpeg(2),
        ),
    ]
    assert site.asked("/rest/")[1].query["user_id"] == "12345678@N00"
