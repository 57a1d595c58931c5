"""X (Twitter) archive: `data/tweets*.js` read past their `window.YTD...` prefix, each file in
`tweets_media/` joined to its post by the id its name starts with, linked from `account.js`."""

from __future__ import annotations

import html
import re
from typing import Any

from service.ingest.exports.index import ExportIndex, Plan
from service.ingest.fields import as_dict, as_id, as_text, dicts, from_format, load_json
from service.ingest.items import Provenance, post_key

_DATA = r"(?:^|/)data/"
_SIGNS = re.compile(_DATA + r"(?:manifest|tweets?|tweets-part\d+|account)\.js$")
_TWEETS = re.compile(_DATA + r"(?:tweets?|tweets-part\d+)\.js$")
_ACCOUNT = re.compile(_DATA + r"(?:account|manifest)\.js$")
_MEDIA = re.compile(_DATA + r"(?:tweets_media|tweet_media)/(?P<id>\d+)-[^/]+$")
_PROFILE_MEDIA = re.compile(_DATA + r"profile_media/[^/]+$")
# The archive's viewer, private messages, and posts the friend deleted already.
_EXCLUDED = frozenset(
    {"assets", "direct_messages_media", "direct_messages_group_media", "deleted_tweets_media"}
)
_CREATED_AT = "%a %b %d %H:%M:%S %z %Y"
_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")


def detect(index: ExportIndex) -> bool:
    return index.any_matching(_SIGNS)


def wants(name: str) -> bool:
    return bool(_TWEETS.search(name) or _ACCOUNT.search(name))


def read_js(data: bytes) -> Any:
    """The value a `data/*.js` file assigns: everything after the first `=` is JSON (the global's
    name changed over the years, so it is never spelled out)."""
    text = data.decode("utf-8-sig", errors="replace")
    head, equals, rest = text.partition("=")
    if not equals or not head.strip().startswith("window"):
        return load_json(text)
    return load_json(rest.strip().removesuffix(";"))


def plan(index: ExportIndex) -> Plan:
    result = Plan("x", excluded_folders=_EXCLUDED)
    username = _username(index)
    posts: dict[str, Provenance] = {}
    for key in index.matching(_TWEETS):
        data = index.documents.get(key)
        for record in dicts(read_js(data) if data is not None else None):
            tweet = as_dict(record.get("tweet", record))
            tweet_id = as_id(tweet.get("id_str")) or as_id(tweet.get("id"))
            if tweet_id is not None:
                posts[tweet_id] = _provenance(tweet, tweet_id, username)
    for key in index.names:
        match = _MEDIA.search(key)
        if match and match["id"] in posts:
            result.add(key, posts[match["id"]])
        elif _PROFILE_MEDIA.search(key):
            result.add(key, Provenance("x", album="Profile photos"))
    return result


def _username(index: ExportIndex) -> str | None:
    # account.js is the account itself; the manifest only describes the archive.
    for key in sorted(index.matching(_ACCOUNT), key=lambda key: key.endswith("manifest.js")):
        data = index.documents.get(key)
        document = read_js(data) if data is not None else None
        for record in dicts(document):
            name = as_text(as_dict(record.get("account")).get("username"))
            if name and _USERNAME.match(name):
                return name
        name = as_text(as_dict(as_dict(document).get("userInfo")).get("userName"))
        if name and _USERNAME.match(name):
            return name
    return None


def _provenance(tweet: dict[str, Any], tweet_id: str, username: str | None) -> Provenance:
    media = list(dicts(as_dict(tweet.get("extended_entities")).get("media")))
    media = media or list(dicts(as_dict(tweet.get("entities")).get("media")))
    # A retweet's picture lives in someone else's post; that post is where it is shown.
    source = next((s for m in media if (s := as_id(m.get("source_status_id_str")))), None)
    if source is not None:
        post_url = f"https://x.com/i/status/{source}"
    else:
        post_url = f"https://x.com/{username or 'i'}/status/{tweet_id}"
    return Provenance(
        "x",
        post_url=post_url,
        taken_at=from_format(tweet.get("created_at"), _CREATED_AT),
        caption=_caption(tweet, media),
        post_key=post_key("x", tweet_id),  # its pictures (up to four) are one post
    )


def _caption(tweet: dict[str, Any], media: list[dict[str, Any]]) -> str | None:
    text = as_text(tweet.get("full_text")) or as_text(tweet.get("text"))
    if text is None:
        return None
    for item in media:  # the t.co link that stands for the picture itself
        link = as_text(item.get("url"))
        if link:
            text = text.replace(link, "")
    return as_text(html.unescape(text))
