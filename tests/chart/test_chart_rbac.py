"""charts/overseer: RBAC per served namespace by default, cluster-wide only when asked.

docs/security.rst says what each grants; tests/chart/test_rbac_on_cluster.py checks it
with ``kubectl auth can-i`` on a real install.
"""

from __future__ import annotations

from typing import Any

from tests.chart.conftest import Render, Rendered
from tests.chart.test_chart import (
    CRDS,
    NAMESPACED,
    NAMESPACES,
    SERVICE_RANGES,
    grants,
    of_component,
    operator_container,
)
from tests.chart.test_chart import operator_roles as operator_objects

# What no rule of the chart may ever grant: each one is a way to more than Overseer needs.
ESCALATING = {
    ("", "pods", "create"),
    ("", "pods", "update"),
    ("", "pods", "patch"),
    ("", "pods/attach", "create"),
    ("", "pods/portforward", "create"),
    ("", "pods/ephemeralcontainers", "patch"),
    ("", "pods/proxy", "get"),
    ("", "serviceaccounts/token", "create"),
    ("", "serviceaccounts", "get"),
    ("", "serviceaccounts", "patch"),
    ("", "secrets", "list"),
    ("", "secrets", "watch"),
    ("", "secrets", "update"),
    ("", "secrets", "patch"),
    ("", "nodes", "get"),
    ("", "nodes/proxy", "get"),
    ("rbac.authorization.k8s.io", "roles", "create"),
    ("rbac.authorization.k8s.io", "rolebindings", "create"),
    ("rbac.authorization.k8s.io", "clusterroles", "bind"),
    ("rbac.authorization.k8s.io", "clusterroles", "escalate"),
    ("", "users", "impersonate"),
    ("", "serviceaccounts", "impersonate"),
    ("batch", "jobs", "update"),
    ("batch", "jobs", "patch"),
}


def env(rendered: Rendered) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in operator_container(rendered)["env"]}


def operator_roles(rendered: Rendered) -> dict[str, set[tuple[str, str, str]]]:
    """The operator's Roles by namespace, but those of its leader election (a Lease)."""
    return {
        r["metadata"]["namespace"]: grants(r["rules"]) for r in operator_objects(rendered, "Role")
    }


def test_by_default_only_the_release_namespace_is_served_with_a_role(render: Render) -> None:
    # Given the chart's defaults
    rendered = render()
    # Then the operator serves its own namespace alone, through a Role there
    assert env(rendered)["OVERSEER_NAMESPACES"] == "overseer-system"
    assert operator_roles(rendered) == {"overseer-system": NAMESPACED}
    (binding,) = operator_objects(rendered, "RoleBinding")
    assert binding["metadata"]["namespace"] == "overseer-system"
    assert binding["roleRef"]["kind"] == "Role"
    # and cluster-wide it may only list what kopf observes and read the Service ranges
    (cluster_role,) = of_component(rendered.of_kind("ClusterRole"), "operator")
    assert grants(cluster_role["rules"]) == CRDS | NAMESPACES | SERVICE_RANGES


def test_cluster_wide_is_an_explicit_choice_and_refused_with_a_list(render: Render) -> None:
    rendered = render({"clusterWide": True})
    assert env(rendered)["OVERSEER_NAMESPACES"] == ""
    assert operator_roles(rendered) == {}
    refused = render({"clusterWide": True, "watchNamespaces": ["team-a"]})
    assert refused.returncode != 0
    assert "watchNamespaces" in refused.stderr


def test_pods_are_only_read_exec_and_logs_only_what_signals_and_output_use(
    render: Render,
) -> None:
    for values in (None, {"clusterWide": True}, {"watchNamespaces": ["team-a", "team-b"]}):
        rendered = render(values)
        for role in rendered.of_kind("Role") + rendered.of_kind("ClusterRole"):
            granted = grants(role["rules"])
            pods = {(r, v) for g, r, v in granted if g == "" and r.startswith("pods")}
            assert pods <= {
                ("pods", "get"),
                ("pods", "list"),
                ("pods", "watch"),
                ("pods/log", "get"),
                # the WebSocket exec of overseer-signal: get before Kubernetes 1.35, create since
                ("pods/exec", "create"),
                ("pods/exec", "get"),
            }, role["metadata"]["name"]
            assert not granted & ESCALATING, role["metadata"]["name"]


def test_service_accounts_may_only_be_created_never_read_nor_given_tokens(render: Render) -> None:
    rendered = render({"watchNamespaces": ["team-a"]})
    (role,) = operator_objects(rendered, "Role")
    accounts = {(r, v) for g, r, v in grants(role["rules"]) if r.startswith("serviceaccounts")}
    assert accounts == {("serviceaccounts", "create")}


def test_the_api_serves_where_the_operator_does(render: Render) -> None:
    rendered = render()
    api = {r["metadata"]["namespace"] for r in of_component(rendered.of_kind("Role"), "api")}
    assert api == {"overseer-system"}
    listed = render({"watchNamespaces": ["team-a", "team-b"]})
    api = {r["metadata"]["namespace"] for r in of_component(listed.of_kind("Role"), "api")}
    assert api == {"team-a", "team-b"}
