"""Flickr profiles through Flickr's API, which needs an API key: each public photo at the largest
size the owner allows, linked to its photo page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from service.ingest.errors import UnreadableLink
from service.ingest.fetch import Fetcher
from service.ingest.fields import as_dict, as_id, as_text, dicts, from_format, web_url
from service.ingest.items import Provenance
from service.ingest.profiles.listing import ProfileListing, ProfilePhoto, fetch_json

_PROFILE_PATH = re.compile(r"^/(?:photos|people)/(?P<user>[^/?#]+)")
_SIZES = ("url_o", "url_k", "url_h", "url_l", "url_c", "url_z", "url_m")  # largest first
_EXTRAS = "date_taken,description,path_alias,media," + ",".join(_SIZES)
_PAGE = 500
NO_KEY = (
    "Reading Flickr profiles needs a Flickr API key, which this service has not been given; "
    "please share your Flickr data export instead (Settings > Your Flickr Data)."
)


def is_flickr(link: httpx.URL) -> bool:
    return link.host in ("flickr.com", "www.flickr.com") and bool(_PROFILE_PATH.match(link.path))


def read(link: httpx.URL, fetcher: Fetcher) -> ProfileListing:
    key = fetcher.options.flickr_api_key
    if not key:
        raise UnreadableLink(NO_KEY)
    found = _call(fetcher, "flickr.urls.lookupUser", {"url": str(link)})
    user = as_dict(found.get("user"))
    nsid = as_text(user.get("id"))
    if nsid is None:
        raise UnreadableLink("Flickr did not find this profile; please check the link.")
    return ProfileListing(
        platform="flickr",
        url=str(link),
        name=as_text(as_dict(user.get("username")).get("_content")) or nsid,
        options=fetcher.options,
        lister=partial(_photos, nsid),
    )


def _call(fetcher: Fetcher, method: str, params: dict[str, str]) -> dict[str, Any]:
    answer = as_dict(
        fetch_json(
            fetcher,
            fetcher.options.flickr_api,
            params={
                "method": method,
                "api_key": fetcher.options.flickr_api_key or "",
                "format": "json",
                "nojsoncallback": "1",
                **params,
            },
            not_found="Flickr did not find this profile; please check the link.",
        )
    )
    if answer.get("stat") != "ok":
        reason = as_text(answer.get("message")) or "it refused the request"
        raise UnreadableLink(f"Flickr could not list this profile ({reason}).")
    return answer


def _photos(nsid: str, fetcher: Fetcher) -> Iterator[ProfilePhoto]:
    page, pages = 1, 1
    while page <= pages:
        params = {"user_id": nsid, "extras": _EXTRAS, "per_page": str(_PAGE), "page": str(page)}
        listing = as_dict(_call(fetcher, "flickr.people.getPublicPhotos", params).get("photos"))
        entries = list(dicts(listing.get("photo")))
        for entry in entries:
            photo = photo_of(entry, nsid)
            if photo is not None:
                yield photo
        number = as_id(listing.get("pages"))
        pages = int(number) if number and entries else 0
        page += 1


def photo_of(entry: dict[str, Any], nsid: str) -> ProfilePhoto | None:
    """One entry of getPublicPhotos at its largest listed size (numbers may come as strings)."""
    url = next((found for size in _SIZES if (found := web_url(entry.get(size)))), None)
    photo_id = as_id(entry.get("id"))
    if url is None or photo_id is None:
        return None
    owner = as_text(entry.get("pathalias")) or as_text(entry.get("path_alias")) or nsid
    description = as_text(as_dict(entry.get("description")).get("_content"))
    provenance = Provenance(
        "flickr",
        post_url=f"https://www.flickr.com/photos/{quote(owner, safe='@')}/{photo_id}/",
        taken_at=from_format(entry.get("datetaken"), "%Y-%m-%d %H:%M:%S"),
        caption=description or as_text(entry.get("title")),
    )
    return ProfilePhoto(url, provenance)
