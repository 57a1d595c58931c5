"""A readable profile and its photos as PhotoItems, downloaded a few at a time just ahead of
the scan, within the per-photo and per-profile caps."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from service.ingest.errors import PhotoReadError, UnreadableLink
from service.ingest.fetch import Fetcher, FetchError, FetchOptions, TooLarge
from service.ingest.items import PhotoItem, Platform, Provenance
from service.ingest.sources import has_photo_signature
from service.ingest.streams import MiB

_GONE = "This photo is no longer online; it may have been taken down already."


@dataclass(frozen=True)
class ProfilePhoto:
    """One image a profile shows, and the post it is shown in."""

    url: str
    provenance: Provenance


Lister = Callable[[Fetcher], Iterator[ProfilePhoto]]


@dataclass(frozen=True)
class ProfileListing:
    """A profile link that can be read. Iterating it lists the profile's pages lazily and gives
    each photo as a PhotoItem keyed by its image URL, whose `read()` downloads it (raising
    PhotoReadError for that photo alone). Listing raises UnreadableLink when the profile stops
    being readable part way (the server went away, the account was locked)."""

    platform: Platform
    url: str
    name: str | None
    options: FetchOptions = field(repr=False)
    lister: Lister = field(repr=False, compare=False)

    def __iter__(self) -> Iterator[PhotoItem]:
        return _downloading(self.lister, self.options)


def fetch_json(
    fetcher: Fetcher,
    url: str,
    *,
    params: dict[str, str] | None = None,
    not_found: str,
    not_found_statuses: tuple[int, ...] = (404, 410),
) -> Any:
    """An API answer as JSON, or UnreadableLink saying in plain words why there is none."""
    try:
        fetched = fetcher.get(url, params=params, max_bytes=fetcher.options.max_document_bytes)
    except FetchError as error:
        raise UnreadableLink(str(error)) from error
    host = urlsplit(fetched.url).hostname or "The server"
    if fetched.status in not_found_statuses:
        raise UnreadableLink(not_found)
    if fetched.status in (401, 403):
        raise UnreadableLink(
            f"{host} shows this profile only to people who are logged in, so we cannot read it; "
            "please share a data export instead."
        )
    document = fetched.json() if fetched.status == 200 else None
    if document is None:
        raise UnreadableLink(
            f"{host} did not answer as expected (status {fetched.status}); please try again later."
        )
    return document


def _downloading(lister: Lister, options: FetchOptions) -> Iterator[PhotoItem]:
    window = max(1, options.concurrency)
    fetcher = Fetcher(options)
    pool = ThreadPoolExecutor(window, thread_name_prefix="profile-photo")
    budget = _Budget(options.max_total_bytes)
    ahead: deque[_Download] = deque()
    photos = _distinct(lister(fetcher), options.max_photos)
    try:
        while True:
            while len(ahead) < window and (photo := next(photos, None)):
                ahead.append(_Download(photo, fetcher, pool, budget))
            if not ahead or budget.spent_out:
                return
            download = ahead.popleft()
            yield download.photo.provenance.item(download.photo.url, download.reader(ahead))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        fetcher.close()


def _distinct(photos: Iterator[ProfilePhoto], limit: int) -> Iterator[ProfilePhoto]:
    """Each image once (a picture can be listed twice: as a post and as a video's cover)."""
    seen: set[str] = set()
    for photo in photos:
        if photo.url not in seen:
            seen.add(photo.url)
            yield photo
            if len(seen) >= limit:
                return


@dataclass
class _Budget:
    """The bytes one profile may download in all, shared by the download threads."""

    left: int
    spent_out: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, size: int) -> None:
        with self._lock:
            self.left -= size
            self.spent_out = self.spent_out or self.left < 0
        if self.spent_out:
            raise PhotoReadError(
                "This profile holds more photos than we read from one link; the rest were skipped."
            )


class _Download:
    """One photo's download, started when it or a photo just before it is read."""

    def __init__(
        self, photo: ProfilePhoto, fetcher: Fetcher, pool: ThreadPoolExecutor, budget: _Budget
    ) -> None:
        self.photo, self._fetcher, self._pool, self._budget = photo, fetcher, pool, budget
        self._future: Future[bytes] | None = None

    def start(self) -> None:
        if self._future is not None:
            return
        try:
            self._future = self._pool.submit(self._fetch, self._fetcher)
        except RuntimeError:  # read after the listing ended and closed its threads
            self._future = Future()
            with Fetcher(self._fetcher.options) as fetcher:
                try:
                    self._future.set_result(self._fetch(fetcher))
                except PhotoReadError as error:
                    self._future.set_exception(error)

    def reader(self, following: deque[_Download]) -> Callable[[], bytes]:
        def read() -> bytes:
            for download in (self, *following):  # the next few download while this is scanned
                download.start()
            assert self._future is not None
            return self._future.result()

        return read

    def _fetch(self, fetcher: Fetcher) -> bytes:
        options = fetcher.options
        try:
            fetched = fetcher.get(self.photo.url, max_bytes=options.max_image_bytes)
        except TooLarge as error:
            megabytes = options.max_image_bytes // MiB
            raise PhotoReadError(
                f"This photo is larger than {megabytes} MB, so it was skipped."
            ) from error
        except FetchError as error:
            raise PhotoReadError(str(error)) from error
        if fetched.status in (404, 410):
            raise PhotoReadError(_GONE)
        if fetched.status != 200:
            raise PhotoReadError(f"The photo could not be downloaded (status {fetched.status}).")
        if not has_photo_signature(fetched.content[:16]):
            raise PhotoReadError("This link gave something other than a photo.")
        self._budget.take(len(fetched.content))
        return fetched.content
