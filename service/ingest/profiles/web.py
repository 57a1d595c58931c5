"""Any other page read as a web gallery: the photos it shows, each linked back to the page."""

from __future__ import annotations

import httpx

from service.ingest.errors import UnreadableLink
from service.ingest.fetch import Fetched, Fetcher, FetchError
from service.ingest.items import Provenance, post_key
from service.ingest.profiles.listing import ProfileListing, ProfilePhoto
from service.ingest.profiles.page_images import images_of_page

_PAGE_TYPES = ("text/html", "application/xhtml+xml")
_NO_PHOTOS = (
    "We found no photos on this page; if it shows them only after logging in or inside an app, "
    "please share a data export instead."
)


def read(link: httpx.URL, fetcher: Fetcher) -> ProfileListing:
    """The page's photos, read now: a page that shows none is refused here."""
    fetched = _page(link, fetcher)
    page = images_of_page(fetched.text(), fetched.url)
    if not page.images:
        raise UnreadableLink(_NO_PHOTOS)
    photos = [
        ProfilePhoto(
            image.url,
            Provenance(
                "web",
                post_url=fetched.url,
                album=page.title,
                taken_at=page.published,
                caption=image.alt,
                post_key=post_key("web", fetched.url),  # the page is the post
            ),
        )
        for image in page.images
    ]
    return ProfileListing(
        platform="web",
        url=fetched.url,
        name=page.title,
        options=fetcher.options,
        lister=lambda _fetcher: iter(photos),
    )


def _page(link: httpx.URL, fetcher: Fetcher) -> Fetched:
    try:
        fetched = fetcher.get(str(link), max_bytes=fetcher.options.max_document_bytes)
    except FetchError as error:
        raise UnreadableLink(str(error)) from error
    if fetched.status in (404, 410):
        raise UnreadableLink("This page was not found; please check the link.")
    if fetched.status in (401, 403):
        raise UnreadableLink(
            "This page is shown only to people who are logged in, so we cannot read it; please "
            "share a data export instead."
        )
    if fetched.status != 200:
        raise UnreadableLink(
            f"This page could not be read (status {fetched.status}); please try again later."
        )
    kind = fetched.headers.get("content-type", "text/html").split(";")[0].strip().lower()
    if kind not in _PAGE_TYPES:
        raise UnreadableLink(
            "This link leads to a file, not a web page; please share the page with the photos."
        )
    return fetched
