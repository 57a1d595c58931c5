"""Data exports (Facebook, Instagram, Google Takeout, X, Mastodon, Flickr) read as PhotoItems."""

from service.ingest.errors import ExportError
from service.ingest.exports.reader import iter_export

__all__ = ["ExportError", "iter_export"]
