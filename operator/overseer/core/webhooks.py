"""Webhooks, the pure half: what is still owed, messages, signatures, URL policy.

Every status event of an execution is posted to each URL configured for its status.
This module decides *what* to send and *when*; :mod:`overseer.webhooks` sends it.

- :func:`build_message` is one owed delivery's exact body and ids, from
  :mod:`overseer.core.webhook_payload` (the body; its ``event`` key is derived from the
  execution's uid and the event's id, so a retry or an operator restart sends the same
  id and receivers can deduplicate on it).
- :func:`plan_deliveries` lists the (event, URL) pairs still owed (at least once).
- :func:`sign` produces the Standard Webhooks headers (when to try again is
  :mod:`overseer.core.delivery_retry`); :func:`check_url` (from
  :mod:`overseer.core.url_policy`) the URL policy on what can be seen without DNS (the
  adapter checks every resolved address too).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from overseer import errors
from overseer.core import url_policy, webhook_payload
from overseer.crd import execution as execution_

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
SIGNATURE_VERSION = "v1"

# --- what is owed -----------------------------------------------------------------------


class Owed(NamedTuple):
    """One delivery still owed; ``record`` is its Pending record, if attempted before."""

    event: execution_.Event
    url: str
    record: execution_.Delivery | None


def plan_deliveries(
    hooks: Mapping[str, Sequence[str]],
    events: Sequence[execution_.Event],
    deliveries: Iterable[execution_.Delivery],
) -> list[Owed]:
    """The (event, URL) deliveries still Pending or never tried, in order.

    Events in their order, then URLs in the order configured (duplicates once). A
    Pending record stays owed until it is Delivered or Failed: at least once.
    """
    records = {(d.event_id, d.url): d for d in deliveries}
    gone = {url for (_, url), d in records.items() if d.status == "Gone"}
    owed: list[Owed] = []
    for event in events:
        key = webhook_payload.local_event_id(event)
        for url in dict.fromkeys(hooks.get(event.status, ())):
            record = records.get((key, url))
            if url in gone:
                continue  # the receiver said 410 Gone: nothing more for this execution
            if record is None or record.status == "Pending":
                owed.append(Owed(event, url, record))
    return owed


def is_due(owed: Owed, now: datetime) -> bool:
    """Whether an owed delivery may be attempted at ``now``."""
    if owed.record is None or owed.record.next_attempt_at is None:
        return True
    return owed.record.next_attempt_at <= now


class Message(NamedTuple):
    """One owed delivery ready to send: the exact body and the ids it is sent under."""

    url: str
    event_id: str
    key: str
    body: bytes
    event_time: datetime
    attempts: int = 0
    retry_since: datetime | None = None
    """When the run of attempts began (None before the first): the horizon counts from it."""
    replays: int | None = None


def build_message(
    owed: Owed, *, job: str, execution_id: str, execution_uid: str, api_url: str, namespace: str
) -> Message:
    """The message for an owed delivery; ``attempts`` carries on from its record."""
    payload = webhook_payload.build_payload(
        job=job,
        execution_id=execution_id,
        execution_uid=execution_uid,
        event=owed.event,
        api_url=api_url,
        namespace=namespace,
    )
    return Message(
        url=owed.url,
        event_id=webhook_payload.local_event_id(owed.event),
        key=payload["event"],
        body=webhook_payload.render_body(payload),
        event_time=owed.event.time,
        attempts=owed.record.attempts if owed.record else 0,
        retry_since=owed.record.retry_since if owed.record else None,
        replays=owed.record.replays if owed.record else None,
    )


# --- signature --------------------------------------------------------------------------


def parse_secret(secret: str) -> bytes:
    """The key bytes: base64 after a ``whsec_`` prefix, the UTF-8 text otherwise."""
    if not secret:
        raise errors.WebhookSecretError("the webhook signing secret is empty; set a secret")
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise errors.WebhookSecretError(
            "the webhook signing secret starts with whsec_ but the rest is not base64; "
            "write whsec_ followed by the base64 of the key, or a secret without the prefix"
        ) from None
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers: HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(parse_secret(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}",
    }


# --- URL policy: in overseer.core.url_policy, its names kept reachable here ---------------

Network = url_policy.Network
Address = url_policy.Address
LINK_LOCAL = url_policy.LINK_LOCAL
LOOPBACK = url_policy.LOOPBACK
CLUSTER_INTERNAL = url_policy.CLUSTER_INTERNAL
UrlPolicy = url_policy.UrlPolicy
DEFAULT_URL_POLICY = url_policy.DEFAULT_URL_POLICY
Target = url_policy.Target
display_url = url_policy.display_url
check_address = url_policy.check_address
check_url = url_policy.check_url
