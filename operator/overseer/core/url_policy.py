"""The webhook URL policy: which URLs and IP addresses a webhook may reach.

Pure. :func:`check_url` checks what can be seen without DNS (scheme, credentials,
literal addresses, names internal by construction); :func:`check_address` checks one
address, which the adapter calls for every address a name resolves to.

An IPv6 address can carry an IPv4 address that the network delivers to: the
IPv4-mapped (``::ffff:a.b.c.d``) and IPv4-translated (``::ffff:0:a.b.c.d``) forms, the
deprecated IPv4-compatible form (``::a.b.c.d``), the NAT64 well-known prefix
(``64:ff9b::/96``, RFC 6052) and 6to4 (``2002::/16``, RFC 3056). :func:`unwrap` returns
that IPv4 address, which the policy then checks in place of the IPv6 one. NAT64 behind
a network-specific prefix cannot be recognised from the address alone: list such a
prefix in the operator's private networks.

:data:`SPECIAL` holds the IANA special-purpose registries (IPv4 and IPv6) beyond the
loopback, link-local and private ranges the policy names on its own: no webhook
receiver lives there. ``ipaddress``' ``is_global`` changed between Python releases, so
the registry is written out here and ``is_global``/``is_reserved`` only add to it.

:func:`widest_service_range` is the largest Service CIDR the API server accepts that
holds a given ClusterIP: a safe stand-in when the cluster's range cannot be read.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import urllib.parse
from typing import NamedTuple

from overseer import errors

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")

SPECIAL: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        # IPv4 (RFC 6890 and its updates)
        "192.0.0.0/24",  # IETF protocol assignments (PCP, NAT64 discovery, DS-Lite...)
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "240.0.0.0/4",  # reserved
        "255.255.255.255/32",  # limited broadcast
        # IPv6
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
        "100::/64",  # discard-only
        "100:0:0:1::/64",  # dummy prefix
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID...
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing SIDs
        "fec0::/10",  # site-local (deprecated)
    )
)
"""Special-purpose ranges no webhook may reach, whatever the policy allows as private."""

_MAX_SERVICE_PREFIX = {4: 12, 6: 108}
"""The API server refuses a --service-cluster-ip-range wider than /12 (IPv4), /108 (IPv6)."""


def unwrap(address: Address) -> Address:
    """The IPv4 address an IPv6 form carries (mapped, translated, compatible, NAT64's
    well-known prefix, 6to4); ``address`` itself otherwise."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in NAT64_WELL_KNOWN or address in IPV4_TRANSLATED:
        return low
    # ::/96 minus :: and ::1, which are IPv6's own unspecified and loopback addresses.
    if address in IPV4_COMPATIBLE and int(address) > 1:
        return low
    return address


def is_special(address: Address) -> bool:
    """In a special-purpose range: reserved, documentation, benchmarking, broadcast...

    Loopback and unspecified addresses are not: the policy names them on its own."""
    if address.is_loopback or address.is_unspecified:
        return False
    if any(address in net for net in SPECIAL) or address.is_reserved:
        return True
    return isinstance(address, ipaddress.IPv6Address) and address.is_site_local


def widest_service_range(cluster_ip: str) -> Network:
    """The widest Service CIDR the API server accepts that holds ``cluster_ip``."""
    address = ipaddress.ip_address(cluster_ip)
    prefix = _MAX_SERVICE_PREFIX[address.version]
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


def plan_service_ranges(cidrs: list[str], cluster_ips: list[str]) -> tuple[Network, ...]:
    """The Service ranges to refuse: the ServiceCIDR objects' CIDRs when there are any,
    else the widest range around each ClusterIP of the ``kubernetes`` Service."""
    if cidrs:
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
    return tuple(widest_service_range(ip) for ip in cluster_ips)


# --- URL policy -------------------------------------------------------------------------


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
    (:func:`unwrap`). Special-purpose ranges are refused even when
    private targets are allowed; only ``policy.allowed`` lets them through.
    """
    unwrapped = unwrap(address)
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
    if is_special(address):
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
