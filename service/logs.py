"""Logs that hold no secret: a token in a URL path is its holder's only key.

uvicorn's access log writes every request's path, and the friend's pages carry their token in it
(`/invite/<token>`, `/checklist/<token>`, `/api/v1/invites/<token>/...`), as do the confirmation
and sign-up links. The filter keeps the route and drops the token.
"""

from __future__ import annotations

import logging
import re

# A path segment following one of these is a token; a query's token/invitation value is too.
_TOKEN_PATH = re.compile(
    r"(/(?:invite|invites|checklist|unsubscribe|confirm|join|reset)/)[^/?#\s]+", re.IGNORECASE
)
_TOKEN_QUERY = re.compile(r"([?&](?:token|invitation)=)[^&#\s]+", re.IGNORECASE)
REDACTED = "…"


def redact(text: str) -> str:
    return _TOKEN_QUERY.sub(rf"\g<1>{REDACTED}", _TOKEN_PATH.sub(rf"\g<1>{REDACTED}", text))


class RedactTokens(logging.Filter):
    """Rewrites a log record's arguments (uvicorn passes the path as one) without tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_access_log() -> None:
    """Install the filter on uvicorn's access logger (once; uvicorn's logging set-up keeps it)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
