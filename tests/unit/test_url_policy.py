"""The webhook URL policy against every address form that hides another, and the IANA
special-purpose ranges (issue 11, item 10)."""

from __future__ import annotations

import ipaddress

import pytest

from overseer import errors
from overseer.core import url_policy, webhooks

# Each hides a loopback, link-local or private IPv4 address in an IPv6 form.
WRAPPED = [
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 well-known prefix: 169.254.169.254
    "http://[64:ff9b::7f00:1]/",  # NAT64: 127.0.0.1
    "http://[64:ff9b::a00:1]/",  # NAT64: 10.0.0.1
    "http://[2002:7f00:1::]/",  # 6to4: 127.0.0.1
    "http://[2002:a9fe:a9fe::1]/",  # 6to4: 169.254.169.254
    "http://[2002:c0a8:101::]/",  # 6to4: 192.168.1.1
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::a9fe:a9fe]/",  # IPv4-compatible: 169.254.169.254
    "http://[::10.0.0.1]/",  # IPv4-compatible
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:a9fe:a9fe]/",  # IPv4-mapped, hex
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated (RFC 2765)
]


@pytest.mark.parametrize("url", WRAPPED)
def test_embedded_ipv4_addresses_are_unwrapped_and_refused(url: str) -> None:
    with pytest.raises(errors.WebhookUrlRefusedError):
        webhooks.check_url(url)


def test_nat64_of_the_metadata_address_is_link_local_even_when_private_is_allowed() -> None:
    with pytest.raises(errors.WebhookUrlRefusedError, match=r"169\.254\.169\.254"):
        webhooks.check_url("http://[64:ff9b::a9fe:a9fe]/", allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::808:808]/",  # NAT64 of 8.8.8.8
        "http://[2002:808:808::1]/",  # 6to4 of 8.8.8.8
    ],
)
def test_a_wrapped_public_address_passes(url: str) -> None:
    webhooks.check_url(url)


SPECIAL = [
    "198.18.0.1",  # benchmarking
    "198.19.255.254",
    "192.0.0.1",  # IETF protocol assignments
    "192.0.0.9",
    "192.0.2.1",  # documentation
    "198.51.100.7",
    "203.0.113.9",
    "192.88.99.1",  # 6to4 relay anycast (deprecated)
    "240.0.0.1",  # reserved
    "254.255.255.255",
    "255.255.255.255",  # limited broadcast
    "224.0.0.1",  # multicast
    "[100::1]",  # discard-only
    "[2001::1]",  # Teredo
    "[2001:2::1]",  # benchmarking
    "[2001:db8::1]",  # documentation
    "[3fff::1]",  # documentation (2024)
    "[5f00::1]",  # segment routing SIDs
    "[fec0::1]",  # site-local (deprecated)
    "[64:ff9b:1::1]",  # local-use translation prefix
    "[ff02::1]",  # multicast
    "[::]",
]


@pytest.mark.parametrize("host", SPECIAL)
def test_special_purpose_addresses_are_refused(host: str) -> None:
    with pytest.raises(errors.WebhookUrlRefusedError):
        webhooks.check_url(f"http://{host}/")


@pytest.mark.parametrize("host", ["198.18.0.1", "240.0.0.1", "255.255.255.255", "[2001:db8::1]"])
def test_special_purpose_addresses_stay_refused_when_private_is_allowed(host: str) -> None:
    with pytest.raises(errors.WebhookUrlRefusedError, match="special-purpose"):
        webhooks.check_url(f"http://{host}/", allow_private=True)


def test_an_allow_listed_network_passes_even_when_special() -> None:
    policy = webhooks.UrlPolicy(allowed=(ipaddress.ip_network("198.18.0.0/15"),))
    webhooks.check_url("http://198.18.0.1/", policy)


def test_a_service_cidr_outside_the_private_ranges_is_refused() -> None:
    # GKE's default service range is public address space.
    policy = webhooks.UrlPolicy(service_cidrs=(ipaddress.ip_network("34.118.224.0/20"),))
    with pytest.raises(errors.WebhookUrlRefusedError, match="cluster-internal"):
        webhooks.check_url("http://34.118.224.10/", policy)
    with pytest.raises(errors.WebhookUrlRefusedError, match="cluster-internal"):
        webhooks.check_url("http://[::ffff:34.118.224.10]/", policy)
    webhooks.check_url("http://34.118.240.1/", policy)


@pytest.mark.parametrize(
    ("cluster_ip", "network"),
    [
        ("10.96.0.1", "10.96.0.0/12"),
        ("34.118.224.1", "34.112.0.0/12"),
        ("fd00:10:96::1", "fd00:10:96::/108"),
    ],
)
def test_the_service_range_guessed_from_the_kubernetes_service_is_the_largest_allowed(
    cluster_ip: str, network: str
) -> None:
    assert url_policy.widest_service_range(cluster_ip) == ipaddress.ip_network(network)


def test_service_cidr_objects_win_over_the_guess() -> None:
    found = url_policy.plan_service_ranges(["10.96.0.0/16", "fd00::/112"], ["10.96.0.1"])
    assert found == (ipaddress.ip_network("10.96.0.0/16"), ipaddress.ip_network("fd00::/112"))
    assert url_policy.plan_service_ranges([], ["10.96.0.1"]) == (
        ipaddress.ip_network("10.96.0.0/12"),
    )
    assert url_policy.plan_service_ranges([], []) == ()
