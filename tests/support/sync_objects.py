"""The sync planner's inputs built from plain bodies, the way the operator's watch sees them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from overseer.core import sync


def desired(body: Mapping[str, Any], source_file: str | None = None) -> sync.DesiredObject:
    """A desired object whose hash is computed from ``body["spec"]``."""
    return sync.DesiredObject(
        body=body, spec_hash=sync.hash_spec(body.get("spec") or {}), source_file=source_file
    )


def existing(obj: Mapping[str, Any]) -> sync.ExistingObject:
    """An object as a previous sync left it: the annotations it wrote."""
    metadata: Mapping[str, Any] = obj.get("metadata") or {}
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    return sync.ExistingObject(
        spec_hash=annotations.get(sync.SPEC_HASH_ANNOTATION),
        source_file=annotations.get(sync.SOURCE_FILE_ANNOTATION),
        metadata=metadata,
    )
