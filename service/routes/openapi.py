"""What /openapi.json says beyond what FastAPI reads from the signatures: the errors each route
can answer (`responses=errors(...)` beside the route), pictures as images, the streamed upload."""

from __future__ import annotations

from typing import Any

from service.routes.schemas import Invalid, Problem

# The sense of each status in this API (../shared/API.md); the route's docstring says when.
MEANINGS = {
    400: "The body could not be read at all (JSON that is not UTF-8, a broken form).",
    401: "Not logged in: no valid `Authorization: Bearer` token (or wrong log-in details).",
    403: "Not allowed yet or any more: an address to confirm, a consent to give, an account "
    "frozen by a report, or a sign-up policy; the detail says which.",
    404: "Not found, or not yours (another owner's data is never 403); for a friend's link: "
    "unknown, revoked, replaced or expired.",
    409: "In conflict with what is there already; the detail says what.",
    412: "A resumable upload's request without `Tus-Resumable: 1.0.0` (the tus version).",
    413: "The body or the file is larger than the limit.",
    415: "Not a kind of file this route takes.",
    422: "Invalid: the detail says why, as a sentence or one entry per field, and never repeats "
    "the input.",
    429: "Too many attempts: try again after `Retry-After` seconds.",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
# What any route with a request body can answer besides its own errors.
BODY = (400, 413, 422)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer these error statuses, each `{"detail": ...}`.

    A route with any parameter lists 422, even one that cannot fail (a `token` in the path):
    FastAPI would declare its own 422 for it otherwise, in a shape the app never sends."""
    return {
        status: {
            "model": Invalid if status == 422 else Problem,
            "description": MEANINGS[status],
            **({"headers": RETRY_AFTER} if status == 429 else {}),
        }
        for status in statuses
    }


# A picture answered as it is (with `response_class=Response`, so no JSON is declared).
JPEG: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The picture, a JPEG.",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
}

# The export upload is streamed to disk by the route itself, so FastAPI sees no body to declare:
# a form with the file (repeated for a split export's parts), or finished resumable uploads.
ARCHIVE_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "the export as downloaded: ZIP, TAR or TAR.GZ; "
                            "repeat the field for each part of a split export",
                        }
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["uploads"],
                    "properties": {
                        "uploads": {
                            "type": "array",
                            "items": {"type": "string", "maxLength": 64},
                            "minItems": 1,
                            "maxItems": 50,
                            "description": "keys of finished uploads (`/uploads`), in order",
                        }
                    },
                }
            },
        },
    }
}
