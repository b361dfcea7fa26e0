"""Builders of the repository routes' answers from cached OverseerRepository bodies.

What the spec holds of credentials is a Secret's name (shown) and, against the CRD's
rule, possibly a user name or password in an http(s) URL (``https://<token>@host``
works with several forges): those read ``***``. The Secrets are never read here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from fastapi import Request

from overseer.core import sync
from overseer.crd import conditions
from overseer_api import urls, views
from overseer_api.schemas import repositories as schemas

Body = Mapping[str, Any]
HIDDEN = "***"


def public_url(url: str) -> str:
    """``url`` without credentials: an http(s) URL's user information reads ``***``
    (an ssh user name such as ``git@`` is no secret and stays)."""
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.scheme in {"http", "https"} and "@" in parts.netloc:
            host = parts.netloc.rpartition("@")[2]
            return urlunsplit(parts._replace(netloc=f"{HIDDEN}@{host}"))
        return url
    return HIDDEN  # not even a URL: show nothing of it


def _requested_at(text: object) -> datetime | None:
    """The requested-sync annotation (seconds since the epoch) as a time."""
    try:
        return datetime.fromtimestamp(float(str(text)), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _secret_name(spec: Body, key: str) -> str | None:
    ref = spec.get(key)
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return str(name) if name else None


def repository(request: Request, body: Body) -> schemas.Repository:
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    annotations = meta.get("annotations") or {}
    found = [schemas.Condition.model_validate(c) for c in status.get("conditions") or ()]
    ready = next((c for c in found if c.type == conditions.READY), None)
    jobs = f"{urls.prefix(request, meta['namespace'])}/jobs?repository={quote(meta['name'])}"
    return schemas.Repository(
        name=meta["name"],
        url=public_url(str(spec.get("url") or "")),
        ref=spec.get("ref"),
        path=spec.get("path"),
        interval=str(spec.get("interval") or "1m"),
        suspend=bool(spec.get("suspend")),
        secret_name=_secret_name(spec, "secretRef"),
        hook_secret_name=_secret_name(spec, "hookSecretRef"),
        commit=status.get("commit"),
        short_commit=status.get("shortCommit"),
        last_sync_time=views.parse_time(status.get("lastSyncTime")),
        ready=None if ready is None else ready.status == "True",
        reason=None if ready is None else ready.reason,
        message=None if ready is None else ready.message,
        conditions=found,
        job_count=status.get("jobCount"),
        errors=[schemas.DefinitionError.model_validate(e) for e in status.get("errors") or ()],
        generation=meta.get("generation"),
        observed_generation=status.get("observedGeneration"),
        sync_requested_at=_requested_at(annotations.get(sync.REQUESTED_SYNC_ANNOTATION)),
        sync_requested_by=annotations.get(sync.REQUESTED_BY_ANNOTATION),
        sync_handled_at=_requested_at(status.get("lastHandledSyncRequest")),
        jobs_url=jobs,
    )
