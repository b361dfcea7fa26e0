"""Webhooks, the pure half: what is still owed, messages, signatures, URL policy.

Every status event of an execution is posted to each URL configured for its status.
This module decides *what* to send and *when*; :mod:`overseer.webhooks` sends it.

- :func:`build_message` is one owed delivery's exact body and ids, from
  :mod:`overseer.core.webhook_payload` (the body; its ``event`` key is derived from the
  execution's uid and the event's id, so a retry or an operator restart sends the same
  id and receivers can deduplicate on it).
- :func:`plan_deliveries` lists the (event, URL) pairs still owed (at least once).
- :func:`sign` produces the Standard Webhooks headers (when to try again is
  :mod:`overseer.core.delivery_retry`); :func:`check_url` the URL policy on what can
  be seen without DNS (the adapter checks every resolved address too).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import ipaddress
import socket
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from overseer import errors
from overseer.core import addresses, webhook_payload
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
    owed: Owed, *, job: str, execution_id: str, execution_uid: str, api_url: str
) -> Message:
    """The message for an owed delivery; ``attempts`` carries on from its record."""
    payload = webhook_payload.build_payload(
        job=job,
        execution_id=execution_id,
        execution_uid=execution_uid,
        event=owed.event,
        api_url=api_url,
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


# --- URL policy -------------------------------------------------------------------------

Network = addresses.Network
Address = addresses.Address

LINK_LOCAL: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
)
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("0.0.0.0/8"),  # "this host": 0.0.0.0 reaches local services
    ipaddress.ip_network("::/128"),
)
CLUSTER_INTERNAL: tuple[Network, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fc00::/7"),
)
"""The default private ranges: RFC 1918, carrier-grade NAT (often pods), IPv6 ULA."""

_INTERNAL_NAMES = ("localhost", "metadata.google.internal", "metadata", "kubernetes")
_INTERNAL_SUFFIXES = (".localhost", ".svc", ".internal", ".local")


@dataclasses.dataclass(frozen=True)
class UrlPolicy:
    """Which webhook targets are allowed.

    ``allow_private`` lets loopback, cluster-internal names and the ``private``
    ranges through; link-local (cloud metadata at 169.254.169.254) needs
    ``allow_link_local`` as well. ``allowed`` lists ranges always let through.
    """

    allow_private: bool = False
    allow_link_local: bool = False
    private: tuple[Network, ...] = CLUSTER_INTERNAL
    service_cidrs: tuple[Network, ...] = ()
    allowed: tuple[Network, ...] = ()
    cluster_domain: str = "cluster.local"


DEFAULT_URL_POLICY = UrlPolicy()


class Target(NamedTuple):
    """A URL that passed :func:`check_url`: its parts, and its IP if it is a literal."""

    scheme: str
    host: str
    port: int
    address: Address | None


def display_url(url: str) -> str:
    """Scheme, host and port only: hook URLs often carry a token in their path."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}/…"


def _literal(host: str) -> Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # Forms the resolver reads as IPv4 too: 2130706433, 0x7f.1, 017700000001.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return address


def check_address(address: Address, policy: UrlPolicy = DEFAULT_URL_POLICY) -> None:
    """Raise :class:`overseer.errors.WebhookUrlRefusedError` if ``address`` may not be posted to.

    An IPv6 form carrying an IPv4 address is judged by that address
    (:func:`overseer.core.addresses.unwrap`). Special-purpose ranges are refused even when
    private targets are allowed; only ``policy.allowed`` lets them through.
    """
    unwrapped = addresses.unwrap(address)
    shown = str(address) if unwrapped == address else f"{address} (carrying {unwrapped})"
    address = unwrapped
    if any(address in net for net in policy.allowed):
        return
    if any(address in net for net in LINK_LOCAL) or address.is_link_local:
        if policy.allow_link_local:
            return
        raise errors.WebhookUrlRefusedError(
            f"webhook address {shown} is link-local (where cloud metadata lives): refused; "
            "allow link-local webhook targets in the operator's settings if this is intended"
        )
    if address.is_multicast:
        raise errors.WebhookUrlRefusedError(f"webhook address {shown} is multicast: refused")
    if addresses.is_special(address):
        raise errors.WebhookUrlRefusedError(
            f"webhook address {shown} is in an IANA special-purpose range (reserved, "
            "documentation, benchmarking, broadcast, protocol assignments): refused; list "
            "its network in the operator's allowed webhook networks if this is intended"
        )
    if any(address in net for net in LOOPBACK) or address.is_loopback:
        kind = "loopback"
    elif any(address in net for net in (*policy.private, *policy.service_cidrs)):
        kind = "cluster-internal or private"
    elif not address.is_global:
        kind = "not globally routable"
    else:
        return
    if not policy.allow_private:
        raise errors.WebhookUrlRefusedError(
            f"webhook address {shown} is {kind}: refused; allow private webhook targets "
            "in the operator's settings if this is intended"
        )


def check_url(url: str, policy: UrlPolicy | None = None, *, allow_private: bool = False) -> Target:
    """Check what can be checked without DNS; return the parts the adapter needs.

    Refuses other schemes than http(s), userinfo, literal IPs in refused ranges and
    names that are internal by construction (``localhost``, ``*.svc``, the cluster
    domain, ``metadata.google.internal``, single-label names the pod's resolver would
    complete with its search domains) unless the policy allows private targets.
    """
    policy = policy or UrlPolicy(allow_private=allow_private)
    shown = display_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise errors.WebhookUrlRefusedError(f"{shown} is not a valid URL") from None
    if parts.scheme not in {"http", "https"}:
        raise errors.WebhookUrlRefusedError(
            f"webhook URL scheme {parts.scheme or '(none)'!r} refused; use http or https"
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise errors.WebhookUrlRefusedError(
            f"{shown}: credentials in a webhook URL are refused; receivers verify the "
            "webhook-signature header instead"
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise errors.WebhookUrlRefusedError(f"{shown} has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    address = _literal(host)
    if address is not None:
        check_address(address, policy)
        return Target(parts.scheme, host, port, address)
    if not policy.allow_private and _internal_name(host, policy.cluster_domain):
        raise errors.WebhookUrlRefusedError(
            f"webhook host {host!r} names a cluster-internal or local service: refused; allow "
            "private webhook targets in the operator's settings if this is intended"
        )
    return Target(parts.scheme, host, port, None)


def _internal_name(host: str, cluster_domain: str) -> bool:
    domain = cluster_domain.strip(".").lower()
    return (
        "." not in host
        or host in _INTERNAL_NAMES
        or host.endswith(_INTERNAL_SUFFIXES)
        or host == domain
        or host.endswith(f".{domain}")
    )
