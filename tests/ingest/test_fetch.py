"""Safe fetching: no private addresses, however the link gets there; sizes and hops capped."""

from __future__ import annotations

import threading
import time

import pytest

from service.ingest.errors import PhotoReadError
from service.ingest.fetch import (
    USER_AGENT,
    BlockedAddress,
    Fetcher,
    FetchError,
    FetchOptions,
    is_public_address,
)
from service.ingest.profiles import read_profile
from tests.ingest.builders import jpeg
from tests.ingest.conftest import Answer, Request, Site


def to_loopback(host: str, port: int) -> list[str]:
    """A resolver for names that look public but lead to this machine (DNS cannot run here)."""
    return ["127.0.0.1"]


def test_it_refuses_a_public_looking_name_that_resolves_to_loopback(site: Site) -> None:
    site.file("/photo.jpg", jpeg(1))
    with Fetcher(FetchOptions(resolve=to_loopback)) as fetcher, pytest.raises(BlockedAddress):
        fetcher.get(f"https://photos.example.org:{site.port}/photo.jpg", max_bytes=1000)
    allowed = FetchOptions(resolve=to_loopback, allow_private=True)
    with Fetcher(allowed) as fetcher:  # the same name, allowed: it did lead here
        assert fetcher.get(
            f"http://photos.example.org:{site.port}/photo.jpg", max_bytes=1000
        ).content == jpeg(1)
    assert len(site.requests) == 1


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "0x7f.1",
        "169.254.169.254",
        "10.0.0.1",
    ],
)
def test_it_refuses_loopback_private_and_link_local_addresses_in_any_spelling(
    site: Site, host: str
) -> None:
    with Fetcher(FetchOptions(connect_timeout=1)) as fetcher, pytest.raises(FetchError) as refused:
        fetcher.get(f"https://{host}:{site.port}/", max_bytes=1000)
    assert isinstance(refused.value, BlockedAddress) or "not a valid" in str(refused.value)
    assert site.requests == []


def test_it_refuses_a_redirect_to_a_private_address(site: Site) -> None:
    site.route("/album", Answer(302, headers={"Location": f"https://localhost:{site.port}/secret"}))
    site.file("/secret", b"internal")
    options = FetchOptions(trusted_hosts=frozenset({"127.0.0.1"}))  # the first hop only
    with Fetcher(options) as fetcher, pytest.raises(BlockedAddress):
        fetcher.get(f"http://127.0.0.1:{site.port}/album", max_bytes=1000)
    assert site.asked("/secret") == []
    with Fetcher(options) as fetcher, pytest.raises(BlockedAddress):
        site.route(
            "/album", Answer(302, headers={"Location": "https://169.254.169.254/latest/meta-data/"})
        )
        fetcher.get(f"http://127.0.0.1:{site.port}/album", max_bytes=1000)


def test_it_follows_five_redirects_and_no_more(site: Site) -> None:
    for hop in range(6):
        site.route(f"/hop/{hop}", Answer(301, headers={"Location": f"/hop/{hop + 1}"}))
    site.file("/hop/6", jpeg(1))
    with Fetcher(FetchOptions(allow_private=True)) as fetcher:
        assert fetcher.get(f"{site.url}/hop/1", max_bytes=1000).url == f"{site.url}/hop/6"
        with pytest.raises(FetchError, match="redirects too many times"):
            fetcher.get(f"{site.url}/hop/0", max_bytes=1000)


def test_it_reads_only_secure_links_from_the_internet() -> None:
    with Fetcher(FetchOptions()) as fetcher, pytest.raises(FetchError, match="secure links"):
        fetcher.get("http://example.org/photo.jpg", max_bytes=1000)


def test_it_names_the_project_in_its_user_agent_and_sends_conditional_headers(site: Site) -> None:
    site.file("/a.jpg", jpeg(1))
    with Fetcher(FetchOptions(allow_private=True)) as fetcher:
        fetcher.get(f"{site.url}/a.jpg", max_bytes=1000, headers={"If-None-Match": '"v1"'})
    assert site.requests[0].headers["User-Agent"] == USER_AGENT
    assert site.requests[0].headers["If-None-Match"] == '"v1"'
    assert USER_AGENT.startswith("photo-removal/")


def test_it_skips_a_photo_larger_than_the_cap_and_goes_on(site: Site) -> None:
    page = '<html><body><img src="/big.jpg"><img src="/small.jpg"></body></html>'
    site.file("/page", page.encode(), "text/html")
    site.file("/big.jpg", jpeg(1) + bytes(5000))
    site.file("/small.jpg", jpeg(2))
    options = FetchOptions(allow_private=True, max_image_bytes=2000)
    big, small = list(read_profile(f"{site.url}/page", options))
    with pytest.raises(PhotoReadError, match="larger than"):
        big.read()
    assert small.read() == jpeg(2)


def test_it_stops_at_the_profiles_photo_cap(site: Site) -> None:
    page = "<html><body>" + "".join(f'<img src="/{n}.jpg">' for n in range(10)) + "</body></html>"
    site.file("/page", page.encode(), "text/html")
    for n in range(10):
        site.file(f"/{n}.jpg", jpeg(n))
    keys = [
        item.key
        for item in read_profile(f"{site.url}/page", FetchOptions(allow_private=True, max_photos=3))
    ]
    assert keys == [f"{site.url}/{n}.jpg" for n in range(3)]


def test_it_refuses_what_is_not_a_photo(site: Site) -> None:
    site.file("/page", b'<html><body><img src="/login.jpg"></body></html>', "text/html")
    site.file("/login.jpg", b"<html>Please log in</html>", "text/html")
    (item,) = list(read_profile(f"{site.url}/page", FetchOptions(allow_private=True)))
    with pytest.raises(PhotoReadError, match="other than a photo"):
        item.read()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.2", False),
        ("::ffff:10.1.2.3", False),
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("0.0.0.0", False),
        ("not an address", False),
    ],
)
def test_it_knows_public_addresses_from_the_rest(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_it_downloads_a_few_photos_at_a_time_just_ahead_of_the_scan(site: Site) -> None:
    lock, active, peak = threading.Lock(), [0], [0]

    def slow_photo(request: Request) -> Answer:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return Answer(200, jpeg(int(request.path[1])), {"Content-Type": "image/jpeg"})

    page = "".join(f'<img src="/{n}.jpg">' for n in range(8))
    site.file("/page", page.encode(), "text/html")
    for n in range(8):
        site.route(f"/{n}.jpg", slow_photo)
    options = FetchOptions(allow_private=True, concurrency=3)
    assert [item.read() for item in read_profile(f"{site.url}/page", options)] == [
        jpeg(n) for n in range(8)
    ]
    assert 1 < peak[0] <= 3


def test_it_gives_up_on_a_server_that_does_not_answer(site: Site) -> None:
    def silent(request: Request) -> Answer:
        time.sleep(1)
        return Answer(200, jpeg(1))

    site.file("/page", b'<img src="/stuck.jpg">', "text/html")
    site.route("/stuck.jpg", silent)
    (item,) = list(
        read_profile(f"{site.url}/page", FetchOptions(allow_private=True, read_timeout=0.2))
    )
    started = time.monotonic()
    with pytest.raises(PhotoReadError, match="took too long"):
        item.read()
    assert time.monotonic() - started < 0.8
