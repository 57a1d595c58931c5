"""Fetching from the public internet without being turned against private networks: http(s) only,
every address checked as it is connected to, redirects re-checked, sizes, times and pace capped."""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx

from service.ingest.fields import from_iso, load_json
from service.ingest.streams import MiB

USER_AGENT = "photo-removal/0.1 (+https://github.com/photo-removal/photo-removal)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RATE_LIMITED_TRIES = 3


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for a host name."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class FetchOptions:
    """How profile links are read: where from, how fast, how much."""

    allow_private: bool = False  # loopback/private addresses and plain http too: tests only
    bluesky_api: str = "https://public.api.bsky.app"
    flickr_api: str = "https://api.flickr.com/services/rest/"
    flickr_api_key: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 120.0  # for one whole response, however slowly it trickles in
    max_image_bytes: int = 30 * MiB
    max_document_bytes: int = 8 * MiB  # a page or an API answer
    max_photos: int = 2000
    max_total_bytes: int = 2048 * MiB
    max_redirects: int = 5
    concurrency: int = 4
    max_rate_wait: float = 60.0  # the longest a server's rate limit is waited out
    user_agent: str = USER_AGENT
    # Hosts exempt from the address check (an operator's own AppView on a private network).
    trusted_hosts: frozenset[str] = frozenset()
    resolve: Callable[[str, int], list[str]] = field(default=resolve_host, repr=False)


class FetchError(Exception):
    """A fetch failed; the message says why in words for the friend who gave the link."""


class BlockedAddress(FetchError):
    """The link leads to a loopback, private, link-local, multicast or reserved address."""


class TooLarge(FetchError):
    """The answer is larger than allowed."""


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        return load_json(self.content)

    def text(self) -> str:
        charset = re.search(r"charset=([\w-]+)", self.headers.get("content-type", ""))
        try:
            return self.content.decode(charset[1] if charset else "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


def is_public_address(text: str) -> bool:
    """True for an address on the public internet. An IPv6 address that carries an IPv4 one
    (mapped, translated, compatible, 6to4, Teredo) is judged by the IPv4 it leads to; a NAT64
    address never passes, since the translator reaches whatever IPv4 it embeds, the private
    ones included, and which prefixes a network translates is not known from here."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _NAT64):
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(str(embedded))
    return address.is_global and not address.is_multicast


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# ::a.b.c.d (IPv4-compatible, deprecated but still routed by some stacks) and ::ffff:0:a.b.c.d
# (IPv4-translated, SIIT); ::ffff:a.b.c.d (mapped) has its own property below.
_CARRYING_IPV4 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("::ffff:0:0:0/96"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in network for network in _CARRYING_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class _CheckedBackend(httpcore.SyncBackend):
    """Resolves each host itself and connects only to addresses it has checked, so a name that
    resolves differently a second time (DNS rebinding) cannot slip through."""

    def __init__(self, options: FetchOptions) -> None:
        self._options = options

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._options.resolve(host, port)
        except (OSError, UnicodeError) as error:
            raise FetchError(f"We could not find {host}; please check the link.") from error
        trusted = self._options.allow_private or host in self._options.trusted_hosts
        if not addresses or not (trusted or all(map(is_public_address, addresses))):
            raise BlockedAddress(
                f"This link leads to {host}, a private or local network address, which we never "
                "read; please share a public link."
            )
        failure: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                failure = error
        raise failure or httpcore.ConnectError(host)


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # loading the CA bundle takes a while: once per process


class _SafeTransport(httpx.HTTPTransport):
    def __init__(self, options: FetchOptions) -> None:
        # trust_env=False: an environment proxy would bypass the address check.
        super().__init__(verify=_tls(), trust_env=False)
        limits = options.concurrency + 2
        # httpx has no option for the network backend, so its pool is rebuilt around ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_tls(),
            max_connections=limits,
            max_keepalive_connections=limits,
            network_backend=_CheckedBackend(options),
        )


class Fetcher:
    """One profile's fetching: a client shared by its download threads, and the servers' pace."""

    def __init__(self, options: FetchOptions) -> None:
        self.options = options
        timeout = httpx.Timeout(options.read_timeout, connect=options.connect_timeout)
        self._client = httpx.Client(
            transport=_SafeTransport(options),
            timeout=timeout,
            follow_redirects=False,  # each hop is checked here
            headers={"User-Agent": options.user_agent, "Accept-Encoding": "identity"},
            trust_env=False,
        )
        self._not_before: dict[str, float] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        *,
        max_bytes: int,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fetched:
        """The answer to GET url (any status; the body only for 2xx), after following at most
        `max_redirects` checked redirects and waiting out rate limits. `headers` are sent with
        every hop (e.g. If-None-Match). Raises FetchError (BlockedAddress, TooLarge)."""
        target = _parse(url, params)
        for _ in range(self.options.max_redirects + 1):
            self._check(target)
            fetched = self._get_paced(target, max_bytes, headers or {})
            location = fetched.headers.get("location")
            if fetched.status not in _REDIRECTS or not location:
                return fetched
            try:
                target = target.join(location)
            except httpx.InvalidURL as error:
                raise FetchError("This link redirects to an address that is not valid.") from error
        raise FetchError("This link redirects too many times; please share the final address.")

    def _check(self, url: httpx.URL) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise FetchError("Only web links (https://...) can be read.")
        trusted = self.options.allow_private or url.host in self.options.trusted_hosts
        if url.scheme == "http" and not trusted:
            raise FetchError("Only secure links (https://...) are read; please share that one.")
        if url.userinfo:
            raise FetchError("Links with a user name or password in them are not read.")

    def _get_paced(self, url: httpx.URL, max_bytes: int, headers: dict[str, str]) -> Fetched:
        for _ in range(_RATE_LIMITED_TRIES):
            self._wait_for(url.host)
            fetched = self._get_once(url, max_bytes, headers)
            wait = _rate_limit_wait(fetched)
            if wait is not None:
                with self._lock:
                    self._not_before[url.host] = time.monotonic() + wait
            if fetched.status != 429:
                return fetched
        raise FetchError(f"{url.host} keeps asking us to slow down; please try again later.")

    def _wait_for(self, host: str) -> None:
        with self._lock:
            wait = self._not_before.get(host, 0.0) - time.monotonic()
        if wait > self.options.max_rate_wait:
            raise FetchError(f"{host} asks us to wait before reading more; please try again later.")
        if wait > 0:
            time.sleep(wait)

    def _get_once(self, url: httpx.URL, max_bytes: int, headers: dict[str, str]) -> Fetched:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code in _REDIRECTS or response.status_code >= 400:
                    content = b""  # nobody reads an error page; its headers say enough
                else:
                    content = _read_capped(response, max_bytes, self.options.deadline)
                return Fetched(str(url), response.status_code, response.headers, content)
        except httpx.TimeoutException as error:
            raise FetchError(
                f"{url.host} took too long to answer; please try again later."
            ) from error
        except httpx.HTTPError as error:
            raise FetchError(f"We could not reach {url.host}; please check the link.") from error


def _parse(url: str, params: dict[str, str] | None) -> httpx.URL:
    try:
        return httpx.URL(url, params=params) if params else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise FetchError("This is not a valid web link.") from error


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"This is larger than {max_bytes // MiB or 1} MB, so it was not read.")
    started, size, chunks = time.monotonic(), 0, []
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"This is larger than {max_bytes // MiB or 1} MB, so it was not read.")
        if time.monotonic() - started > deadline:
            raise FetchError("This took too long to download; please try again later.")
        chunks.append(chunk)
    return b"".join(chunks)


def _rate_limit_wait(fetched: Fetched) -> float | None:
    """Seconds to wait before asking this server again, from Retry-After or the rate-limit
    headers Mastodon (X-RateLimit-*) and Bluesky (RateLimit-*) send; None when no wait."""
    headers = fetched.headers
    retry_after = headers.get("retry-after", "")
    if fetched.status == 429 and retry_after.strip().isdigit():
        return float(retry_after)
    remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
    if fetched.status != 429 and (remaining is None or remaining.strip() not in ("0", "0.0")):
        return None
    reset = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset") or ""
    return _seconds_until(reset.strip()) if reset else (1.0 if fetched.status == 429 else None)


def _seconds_until(reset: str) -> float:
    if re.fullmatch(r"\d+(\.\d+)?", reset):
        number = float(reset)  # a Unix time, or (IETF draft) seconds from now
        return max(0.0, number - time.time()) if number > 1e9 else number
    when = from_iso(reset)
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when else 1.0
