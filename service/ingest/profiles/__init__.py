"""Public profile links (Bluesky, Mastodon-compatible, Flickr, any web gallery) as PhotoItems."""

from service.ingest.errors import UnreadableLink
from service.ingest.fetch import FetchOptions
from service.ingest.profiles.listing import ProfileListing
from service.ingest.profiles.reader import iter_profile, read_profile

__all__ = ["FetchOptions", "ProfileListing", "UnreadableLink", "iter_profile", "read_profile"]
