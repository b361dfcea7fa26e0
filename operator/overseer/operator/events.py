"""Kubernetes Events posted on Overseer's objects: the one poster every reaction is given.

Reactions take a :data:`EventPoster` rather than calling kopf, so that tests pass a
recorder; the operator passes :func:`post_event`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import kopf

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]
"""Posts a Kubernetes Event on an object: (object, type, reason, message)."""


def post_event(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post an Event on ``obj`` (kopf sends it in the background, never blocking)."""
    # kopf reads only apiVersion, kind and metadata: a plain mapping serves as a Body.
    kopf.event(cast("kopf.Body", obj), type=type_, reason=reason, message=message)
