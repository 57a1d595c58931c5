"""How to take a photo down on each platform, in plain words: the one place these steps live.

Drawn from ../shared/FORMATS.md section 7. Menus change often: when a platform renames a button,
this is the only file to edit.
"""

from __future__ import annotations

from typing import TypedDict


class Way(TypedDict):
    title: str
    steps: list[str]


INSTRUCTIONS: dict[str, list[Way]] = {
    "facebook": [
        {
            "title": "Delete the post",
            "steps": [
                "Open the post (on your profile, or from Settings → Activity log).",
                "Tap or click “…” at its top right.",
                "Choose “Move to trash” (older menus say “Delete post”) and confirm.",
            ],
        },
        {
            "title": "Or delete just this photo",
            "steps": [
                "Open the photo, tap “…”, choose “Delete photo” and confirm.",
            ],
        },
        {
            "title": "Or make it private",
            "steps": [
                "Tap “…” on the post, choose “Edit audience” and pick “Only me” or “Friends”.",
            ],
        },
    ],
    "instagram": [
        {
            "title": "Delete the post",
            "steps": [
                "Open your profile and tap the post.",
                "Tap “…” at the top right, then “Delete”, and confirm.",
                "For one photo of several: “…” → “Edit”, swipe to it, tap the bin, then “Done”.",
            ],
        },
        {
            "title": "Or hide it",
            "steps": [
                "Tap “…” on the post and choose “Archive”: only you will see it.",
            ],
        },
    ],
    "google_photos": [
        {
            "title": "Take it out of a shared album",
            "steps": [
                "Open the album and select the photo.",
                "Tap “More” (⋮) and choose “Remove from album”.",
            ],
        },
        {
            "title": "Or stop sharing the album",
            "steps": [
                "Open the album, tap “More” → “Options” and turn off “Link sharing”.",
            ],
        },
        {
            "title": "Or delete the photo",
            "steps": [
                "Open the photo and tap the bin icon; it leaves every album you added it to.",
            ],
        },
    ],
    "x": [
        {
            "title": "Delete the post",
            "steps": [
                "Open the post and tap “…” (More).",
                "Choose “Delete” and confirm “Delete”.",
            ],
        },
    ],
    "mastodon": [
        {
            "title": "Delete the post",
            "steps": [
                "On your post, tap “…” (More).",
                "Choose “Delete” and confirm. Other servers normally remove their copies too.",
            ],
        },
    ],
    "bluesky": [
        {
            "title": "Delete the post",
            "steps": [
                "Open the post's “…” menu.",
                "Choose “Delete post” and confirm “Delete”.",
            ],
        },
    ],
    "flickr": [
        {
            "title": "Delete the photo",
            "steps": [
                "Open the photo and click the bin icon, then “Delete”.",
                "Or: You → Camera Roll, select the photo, “Delete”, and confirm.",
            ],
        },
        {
            "title": "Or make it private",
            "steps": [
                "Open the photo, edit its privacy, and choose “Only you” or “Friends & family”.",
            ],
        },
    ],
    "web": [
        {
            "title": "Take it off the page",
            "steps": [
                "Remove the photo from the page or gallery where it is published.",
                "If someone else runs the site, ask them to remove it (the page is linked below).",
            ],
        },
    ],
    "other": [
        {
            "title": "Take it down where you shared it",
            "steps": [
                "Find where you posted or shared this photo and delete it there,",
                "or change who can see it so it is no longer public.",
            ],
        },
    ],
}


def instructions_for(platform: str) -> list[Way]:
    return INSTRUCTIONS.get(platform, INSTRUCTIONS["other"])
