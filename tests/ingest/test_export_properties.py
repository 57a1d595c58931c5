"""Every export parser against missing fields, odd types and odd encodings: no exception other
than the documented ones escapes, and what comes out is well formed."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.ingest.errors import ArchiveError, ExportError, PhotoReadError
from service.ingest.exports import (
    facebook,
    flickr_export,
    google_photos,
    instagram,
    iter_export,
    mastodon_archive,
    x_archive,
)
from service.ingest.exports.index import ExportIndex
from service.ingest.fields import MAX_TEXT, from_iso, from_unix, repair_mojibake
from service.ingest.items import POST_KEY_LENGTH
from tests.ingest.builders import jpeg, write_zip

PHOTOS = [
    "media/a.jpg",
    "Takeout/Google Photos/Photos from 2019/IMG_1.jpg",
    "data/tweets_media/17-a.jpg",
    "media_attachments/files/1/original/a.jpg",
    "x_131_o.jpg",
    "posts/media/1_n_2",
]
DOCUMENTS = {
    facebook: [
        "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json",
        "posts/album/0.json",
        "posts/your_uncategorized_photos.json",
        "posts/your_videos.json",
    ],
    instagram: [
        "your_instagram_activity/media/posts_1.json",
        "content/stories.json",
        "content/archived_posts.json",
        "media.json",
        "personal_information.json",
    ],
    google_photos: [
        "Takeout/Google Photos/Photos from 2019/IMG_1.jpg.json",
        "Takeout/Google Photos/Photos from 2019/IMG_1.jpg.supplemental-met.json",
        "Takeout/Google Photos/Photos from 2019/metadata.json",
    ],
    x_archive: ["data/tweets.js", "data/account.js", "data/manifest.js"],
    mastodon_archive: ["outbox.json", "actor.json"],
    flickr_export: ["photo_131.json", "albums.json"],
}
# The names the parsers read.
FIELD_NAMES = """
uri timestamp creation_timestamp title description data post attachments media
media_metadata photo_metadata exif_data taken_timestamp thumbnail photos name cover_photo
other_photos_v2 ig_stories path caption taken_at profile_user media_map_data
photoTakenTime creationTime url trashed date albumData tweet id_str id created_at full_text
extended_entities entities source_status_id_str account username userInfo userName
orderedItems type object to cc published content attachment icon image href albums
date_taken photopage
"""
FIELDS = [*FIELD_NAMES.split(), "Profile Photo"]
ODD_TEXT = [
    *PHOTOS,
    "1547248270",
    "-62169958800",
    "1e400",
    "Mon May 13 18:22:05 +0000 2024",
    "2024-05-13T07:41:12Z",
    "2006-04-22 14:05:31",
    "Create",
    "Caf\u00c3\u00a9",
    "\u00f0\u009f",
    "https://www.w3.org/ns/activitystreams#Public",
    "../../etc/passwd",
    "/system/a.jpg",
    "https://x.com/a",
    "\x00",
    "é" * 3000,
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(ODD_TEXT)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), inner, max_size=6)
    ),
    max_leaves=40,
)


def encoded(value: object, encoding: str, prefix: str) -> bytes:
    return (prefix + json.dumps(value, ensure_ascii=encoding == "latin-1")).encode(
        encoding, "replace"
    )


documents = st.one_of(
    st.builds(
        encoded,
        json_values,
        st.sampled_from(["utf-8", "utf-16", "utf-8-sig", "latin-1"]),
        st.sampled_from(["", "window.YTD.tweets.part0 = "]),
    ),
    st.binary(max_size=64),
)


def well_formed(index: ExportIndex, layout: ModuleType) -> None:
    try:
        plan = layout.plan(index)
    except ExportError:
        return
    for key, provenance in plan.found.items():
        assert key in index.names
        assert provenance.taken_at is None or provenance.taken_at.tzinfo is UTC
        for text in (provenance.caption, provenance.album, provenance.post_url):
            assert text is None or (isinstance(text, str) and 0 < len(text) <= MAX_TEXT)
        key = provenance.post_key
        assert key is None or (isinstance(key, str) and 0 < len(key) <= POST_KEY_LENGTH)


@pytest.mark.parametrize(
    "layout", list(DOCUMENTS), ids=lambda layout: layout.__name__.rsplit(".")[-1]
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_it_parses_odd_documents_without_failing(layout: ModuleType, data: st.DataObject) -> None:
    chosen = data.draw(st.dictionaries(st.sampled_from(DOCUMENTS[layout]), documents, max_size=3))
    index = ExportIndex([*PHOTOS, *chosen], chosen)
    assert isinstance(layout.detect(index), bool)
    well_formed(index, layout)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chosen=st.dictionaries(
        st.sampled_from([p for ps in DOCUMENTS.values() for p in ps]), documents, max_size=4
    )
)
def test_it_reads_an_export_with_odd_documents_to_the_end(
    tmp_path: Path, chosen: dict[str, bytes]
) -> None:
    path = write_zip(tmp_path / "export.zip", {**{photo: jpeg(1) for photo in PHOTOS}, **chosen})
    try:
        keys = [item.key for item in iter_export([path]) if item.read() == jpeg(1)]
    except (ArchiveError, PhotoReadError) as error:  # ExportError is an ArchiveError
        assert isinstance(error, ExportError), error
        return
    assert set(keys) <= set(PHOTOS)


@given(st.text())
def test_it_repairs_any_text_meta_garbled(text: str) -> None:
    garbled = text.encode("utf-8").decode("latin-1")
    assert repair_mojibake(garbled) == text
    if any(ord(char) > 0xFF for char in text):
        assert repair_mojibake(text) == text  # text that was never garbled is left alone


@given(st.one_of(scalars, json_values))
def test_it_reads_times_as_aware_utc_or_not_at_all(value: object) -> None:
    for when in (from_unix(value), from_iso(value)):
        assert when is None or when.tzinfo is UTC
