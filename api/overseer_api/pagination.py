"""Opaque ``continue`` cursors: where the next page starts, stable while items change.

A cursor holds the sort key of the last item returned (a job's display name, an
execution's id); the next page starts just after it, so items added or removed
elsewhere never make a page repeat or skip the others.
"""

from __future__ import annotations

import base64
import binascii
import json

from overseer import errors

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def encode(after: str | list[str]) -> str:
    raw = json.dumps({"after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None) -> str | list[str] | None:
    """The key a cursor holds; InvalidRequestError (400) when it is not one of ours."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        after = None
    if isinstance(after, str) or (
        isinstance(after, list) and all(isinstance(part, str) for part in after)
    ):
        return after
    msg = "continue is not a cursor this API gave; pass the 'continue' of the previous page"
    raise errors.InvalidRequestError(msg)
