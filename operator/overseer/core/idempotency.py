"""Idempotency keys: the claim object that makes a POST happen once, and what to do with it.

A POST with an ``Idempotency-Key`` first creates a *claim*: a coordination.k8s.io
Lease in the request's namespace whose name is derived from (namespace, caller,
key), so every API replica computes the same name and the API server's atomic
create decides who acts (the others get a conflict). The claim holds the request's
digest, the caller, its creation time and, once the action is done, its result (the
execution's name). This module builds and reads claims and decides, for a claim
found already there, what a request does: replay the result, refuse another body,
wait for the holder, or take an expired or abandoned claim over. The loop that
creates, waits and replaces lives in ``overseer_api.idempotency``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from overseer import errors

KEY_MAX_LENGTH = 255
NAME_PREFIX = "overseer-idempotency-"
LABEL = "overseer.dev/idempotency"
"""Label on every claim (value ``claim``), to list them for garbage collection."""
LABEL_VALUE = "claim"
CLAIM_LABEL = "overseer.dev/idempotency-claim"
"""Label on what an action created (an execution), naming its claim: how an abandoned
claim finds the result its holder made but never recorded."""
_DIGEST = "overseer.dev/request-digest"
_CALLER = "overseer.dev/caller"
_CREATED = "overseer.dev/created"
_RESULT = "overseer.dev/result"


def check_key(key: str) -> str:
    """The key when usable; raise :class:`~overseer.errors.IdempotencyKeyError` if not."""
    if not key or len(key) > KEY_MAX_LENGTH or not all(" " <= c <= "~" for c in key):
        raise errors.IdempotencyKeyError(
            f"the Idempotency-Key header must be 1 to {KEY_MAX_LENGTH} printable ASCII "
            "characters, such as a UUID; send a new one for each new request"
        )
    return key


def claim_name(namespace: str, caller: str, key: str) -> str:
    """The claim's Lease name: the same for the same (namespace, caller, key) everywhere."""
    digest = hashlib.sha256("\0".join((namespace, caller, key)).encode()).hexdigest()
    return NAME_PREFIX + digest[:40]  # 61 characters: a label value too (at most 63)


def request_digest(method: str, path: str, body: Any) -> str:
    """SHA-256 of the request as it matters: the verb, the path and the JSON body.

    The body is canonical JSON (sorted keys, no spaces), so the same parameters in
    another order or spacing are the same request.
    """
    text = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim as read from the cluster (or about to be written)."""

    namespace: str
    name: str
    digest: str
    caller: str
    created: datetime
    result: str | None = None
    resource_version: str | None = None


def build_claim(claim: Claim, holder: str, ttl: timedelta) -> dict[str, Any]:
    """The Lease that stores ``claim``; with its resourceVersion, a replacement of it."""
    annotations = {
        _DIGEST: claim.digest,
        _CALLER: claim.caller,
        _CREATED: claim.created.isoformat(),
    }
    if claim.result is not None:
        annotations[_RESULT] = claim.result
    metadata: dict[str, Any] = {
        "name": claim.name,
        "namespace": claim.namespace,
        "labels": {LABEL: LABEL_VALUE, "app.kubernetes.io/managed-by": "overseer-api"},
        "annotations": annotations,
    }
    if claim.resource_version is not None:
        metadata["resourceVersion"] = claim.resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": int(ttl.total_seconds())},
    }


def parse_claim(obj: dict[str, Any]) -> Claim:
    """The claim a Lease holds; one without a readable creation time counts as ancient."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    try:
        created = datetime.fromisoformat(annotations[_CREATED])
    except (KeyError, TypeError, ValueError):
        created = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    return Claim(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        digest=str(annotations.get(_DIGEST, "")),
        caller=str(annotations.get(_CALLER, "")),
        created=created,
        result=annotations.get(_RESULT),
        resource_version=meta.get("resourceVersion"),
    )


class Decision(enum.Enum):
    """What a request does about a claim that exists already."""

    REPLAY = "replay"
    """Same request, done: answer with its result."""
    MISMATCH = "mismatch"
    """The key was used for another request: refuse."""
    WAIT = "wait"
    """Same request, its holder is still at it: read the claim again shortly."""
    RECOVER = "recover"
    """Same request, held too long without a result: its holder is presumed gone; look for
    what it made, else take the claim over."""
    EXPIRED = "expired"
    """Older than the keys' lifetime: the key is free again; take the claim over."""


def decide(claim: Claim, digest: str, now: datetime, ttl: timedelta, stale: timedelta) -> Decision:
    """What to do about ``claim`` for a request whose digest is ``digest``, at ``now``."""
    age = now - claim.created
    if age >= ttl:
        return Decision.EXPIRED
    if claim.digest != digest:
        return Decision.MISMATCH
    if claim.result is not None:
        return Decision.REPLAY
    return Decision.RECOVER if age >= stale else Decision.WAIT


def expired(claim: Claim, now: datetime, ttl: timedelta) -> bool:
    """Whether garbage collection may delete the claim."""
    return now - claim.created >= ttl
