"""charts/overseer: the NetworkPolicy of executions' pods (docs/security.rst, issue 11 item 5).

tests/e2e/test_network_policy.py checks it holds on the cluster with an enforcer.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from overseer.core import execution_job
from tests.chart.conftest import Render, Rendered
from tests.unit.test_execution_job import context

DENIED_BY_DEFAULT = [
    "169.254.169.254",  # cloud metadata
    "fd00:ec2::254",  # cloud metadata, IPv6
    "10.96.0.1",  # a typical kubernetes Service ClusterIP
    "172.20.0.10",
    "192.168.1.1",
    "100.64.0.1",
    "127.0.0.1",
    "::1",
]
ALLOWED_BY_DEFAULT = ["8.8.8.8", "192.0.2.9", "2001:4860:4860::8888"]


def policies(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["namespace"]: p for p in rendered.of_kind("NetworkPolicy")}


def reachable(policy: dict[str, Any], address: str) -> bool:
    """Whether an ipBlock of the policy's egress lets a job pod reach ADDRESS (any port)."""
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"]["egress"]:
        if "ports" in rule:
            continue
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if block is None or ip.version != ipaddress.ip_network(block["cidr"]).version:
                continue
            excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
            if ip in ipaddress.ip_network(block["cidr"]) and not any(ip in e for e in excepted):
                return True
    return False


def test_each_served_namespace_gets_a_policy_selecting_the_operators_job_pods(
    render: Render,
) -> None:
    rendered = render({"watchNamespaces": ["team-a", "team-b"]})
    found = policies(rendered)
    assert set(found) == {"team-a", "team-b"}
    # The pods of the Jobs the operator builds carry the labels the policy selects
    job = execution_job.build_execution_job(context({}))
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    for policy in found.values():
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert selector == {
            "app.kubernetes.io/managed-by": "overseer",
            "app.kubernetes.io/component": "execution",
        }
        assert selector.items() <= pod_labels.items()
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert policy["spec"]["ingress"] == []


def test_metadata_private_ranges_and_loopback_are_denied_and_dns_allowed(render: Render) -> None:
    (policy,) = policies(render()).values()
    for address in DENIED_BY_DEFAULT:
        assert not reachable(policy, address), address
    for address in ALLOWED_BY_DEFAULT:
        assert reachable(policy, address), address
    dns = [rule for rule in policy["spec"]["egress"] if "ports" in rule]
    assert dns == [{"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]


def test_the_api_servers_addresses_are_cut_out_however_public(render: Render) -> None:
    values = {"networkPolicy": {"egress": {"apiServerCIDRs": ["192.0.2.2/32", "2001:db8::2/128"]}}}
    (policy,) = policies(render(values)).values()
    assert not reachable(policy, "192.0.2.2")
    assert not reachable(policy, "2001:db8::2")
    assert reachable(policy, "192.0.2.3")


def test_pods_are_reachable_but_overseers_own_and_kube_systems(render: Render) -> None:
    (policy,) = policies(render()).values()
    peers = [
        p for rule in policy["spec"]["egress"] for p in rule.get("to", []) if "ipBlock" not in p
    ]
    assert peers == [
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                     "values": ["kube-system"]}
                ]
            },
            "podSelector": {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/part-of", "operator": "NotIn",
                     "values": ["overseer"]}
                ]
            },
        }
    ]  # fmt: skip
    # and the chart's own pods carry the label that keeps them out of reach
    for workload in rendered_pods(render({"api": {"placement": "deployment"}, **CLAIM})):
        assert workload["app.kubernetes.io/part-of"] == "overseer"


CLAIM = {"operator": {"archive": {"existingClaim": "archive"}}}


def rendered_pods(rendered: Rendered) -> list[dict[str, str]]:
    kinds = ("Deployment", "StatefulSet", "DaemonSet")
    return [
        o["spec"]["template"]["metadata"]["labels"]
        for kind in kinds
        for o in rendered.of_kind(kind)
    ]


def test_allow_lists_in_values(render: Render) -> None:
    database = {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"port": 5432}]}
    ingress = [{"from": [{"podSelector": {"matchLabels": {"role": "prober"}}}]}]
    values = {
        "networkPolicy": {
            "egress": {"extraRules": [database], "pods": False, "dns": False},
            "ingress": ingress,
        }
    }
    (policy,) = policies(render(values)).values()
    assert policy["spec"]["egress"][-1] == database
    assert [r for r in policy["spec"]["egress"] if "ports" in r] == [database]
    assert policy["spec"]["ingress"] == ingress
    assert not [p for r in policy["spec"]["egress"] for p in r["to"] if "namespaceSelector" in p]


def test_none_when_disabled_or_cluster_wide(render: Render) -> None:
    assert render({"networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy") == []
    assert render({"clusterWide": True}).of_kind("NetworkPolicy") == []


def test_an_address_without_its_prefix_length_is_refused(render: Render) -> None:
    rendered = render({"networkPolicy": {"egress": {"apiServerCIDRs": ["192.0.2.2"]}}})
    assert rendered.returncode != 0
    assert "apiServerCIDRs" in rendered.stderr
