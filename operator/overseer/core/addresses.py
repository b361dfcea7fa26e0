"""Which IP addresses a webhook may reach: unwrapping IPv6 forms, and the special ranges.

Pure. An IPv6 address can carry an IPv4 address that the network delivers to: the
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

import ipaddress

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
