"""How a friend asks each platform for a download of their photos: the exact menus, settings and
links, and how long the platform takes. The share page folds one guide per platform.

Drawn from ../shared/FORMATS.md (what each export holds and its quirks). Menus change often: when
a platform renames a button, this is the only file to edit.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1024**3
# The part sizes Google Takeout offers for a split download.
TAKEOUT_PART_SIZES = (1, 2, 4, 10, 50)


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Guide:
    """One platform's way to a download: where to ask (`links`), the steps in order, how long
    the platform takes (`wait`), and what tends to go wrong (`notes`)."""

    key: str  # the page anchor: #guide-<key>
    name: str
    wait: str
    steps: tuple[str, ...]
    links: tuple[Link, ...] = ()
    notes: tuple[str, ...] = ()


def _meta(name: str, url: str) -> Guide:
    """Facebook and Instagram share Meta's Accounts Center, and its settings."""
    return Guide(
        key=name.lower(),
        name=name,
        wait="Usually a few hours; with many photos, up to a few days. Meta tells you by "
        "notification and e-mail.",
        links=(Link(f"Open “Download your information” for {name}", url),),
        steps=(
            "Open the link above and log in if asked. In the app: Menu → Settings → Accounts "
            "Center → Your information and permissions → Download your information.",
            "Choose “Download or transfer information”, then your " + name + " profile.",
            "Choose “Some of your information” and tick only your posts (“Posts”, or “Content” "
            "in some versions): your photos and albums come with them. Messages are not needed.",
            "Choose “Download to device”.",
            "Set Date range “All time”, Format “JSON” and Media quality “High”, then “Create "
            "files”.",
            "When Meta tells you the files are ready, open the same page again and download "
            "every file it offers.",
        ),
        notes=(
            "Format “JSON”, not HTML: a download made in HTML cannot be read here.",
            "The files can be downloaded for a few days only, so download them soon.",
            "A big download comes in several files: upload them all together.",
        ),
    )


def takeout_part_size(max_upload_bytes: int) -> int:
    """The largest part size Takeout offers (in GB) that this service still takes in one file."""
    fitting = [size for size in TAKEOUT_PART_SIZES if size * GB <= max_upload_bytes]
    return max(fitting, default=TAKEOUT_PART_SIZES[0])


def _google_photos(max_upload_bytes: int) -> Guide:
    return Guide(
        key="google_photos",
        name="Google Photos (Google Takeout)",
        wait="From a few hours to a few days, depending on how many photos you have. Google "
        "e-mails you when it is ready.",
        links=(Link("Open Google Takeout", "https://takeout.google.com/"),),
        steps=(
            "Open Google Takeout and sign in with the account that holds your photos.",
            "Click “Deselect all”, then tick only “Google Photos”, and click “Next step”.",
            "Choose “Send download link via email” and “Export once”.",
            f"Set File type “.zip” and File size “{takeout_part_size(max_upload_bytes)} GB”, "
            "then “Create export”.",
            "When Google's e-mail comes, click “Download your files” in it and download every "
            "part.",
        ),
        notes=(
            "A big library comes in several parts named like takeout-…-001.zip, "
            "takeout-…-002.zip: upload all the parts together, as one share.",
            "Google keeps the download for about a week.",
        ),
    )


_X = Guide(
    key="x",
    name="X (Twitter)",
    wait="Usually a day, sometimes longer. X tells you by notification and e-mail.",
    links=(
        Link(
            "Open “Download an archive of your data”", "https://x.com/settings/download_your_data"
        ),
    ),
    steps=(
        "Open the link above, or in the app: Settings and privacy → Your account → Download "
        "an archive of your data.",
        "Enter your password and the code X sends you, then choose “Request archive”.",
        "When X tells you it is ready, open the same page again and choose “Download archive”.",
    ),
    notes=("Upload the ZIP file as you downloaded it.",),
)

_MASTODON = Guide(
    key="mastodon",
    name="Mastodon",
    wait="Usually a few minutes to an hour. You can ask for one archive every 7 days.",
    links=(
        Link(
            "Data export on mastodon.social (on another server, use its address instead)",
            "https://mastodon.social/settings/export",
        ),
    ),
    steps=(
        "On your server's website, log in and open Preferences → Import and export → Data "
        "export. Its address is https://<your server>/settings/export.",
        "Click “Request your archive”.",
        "When the e-mail comes, download the archive from the same page (a .tar.gz file).",
    ),
    notes=(
        "No download needed: a public Mastodon or Bluesky profile can be shared as a link "
        "instead, with “Or share a link to your public profile” below.",
    ),
)

_FLICKR = Guide(
    key="flickr",
    name="Flickr",
    wait="From a few hours to a few days. Flickr e-mails you when it is ready.",
    links=(Link("Open your Flickr account settings", "https://www.flickr.com/account"),),
    steps=(
        "Open your account settings (your picture → Settings).",
        "Under “Your Flickr data”, click “Request my Flickr data”.",
        "When Flickr's e-mail comes, download every file on that page: one holds the "
        "descriptions, the others (data-download-1.zip, -2.zip…) the photos.",
    ),
    notes=("Upload all the files together, as one share.",),
)

_FOLDER = Guide(
    key="folder",
    name="A folder of photos on a phone or computer",
    wait="No waiting: you choose the photos yourself.",
    steps=(
        "The upload field takes ZIP files, not loose photos: put the photos in a folder and "
        "compress it.",
        "iPhone or iPad: in Photos, tap “Select”, pick the photos, tap Share → “Save to Files” "
        "and save them in a new folder. In the Files app, touch and hold that folder and tap "
        "“Compress”: a .zip file appears next to it.",
        "Android: in the Files by Google app, open the folder (for instance DCIM → Camera), "
        "touch and hold to select the photos, then tap ⋮ → “Compress”. In Samsung's My Files: "
        "select them, then More → “Compress”.",
        "Windows: right-click the folder → “Compress to ZIP file” (on Windows 10: Send to → "
        "“Compressed (zipped) folder”).",
        "Mac: Control-click the folder → “Compress”.",
        "Then choose the .zip file in the upload field below (on a phone: “Browse” or “Choose "
        "File”).",
    ),
)


def guides(max_upload_bytes: int) -> tuple[Guide, ...]:
    """Every platform's guide, in the order the share page shows them."""
    return (
        _meta("Facebook", "https://accountscenter.facebook.com/info_and_permissions/dyi"),
        _meta("Instagram", "https://accountscenter.instagram.com/info_and_permissions/dyi"),
        _google_photos(max_upload_bytes),
        _X,
        _MASTODON,
        _FLICKR,
        _FOLDER,
    )
