"""The chart's RBAC on a real API server: ``kubectl auth can-i`` as its ServiceAccounts.

Each test installs the chart (no CRDs, nothing scaled up: no pod starts) into its own
namespace under a release name of its own, and asks the API server what the operator's
and the API's ServiceAccounts may do where they serve, and where they must not.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest

from tests.support import helm as helm_
from tests.support.cluster import Cluster, Kube

pytestmark = pytest.mark.cluster

# Nothing scaled up, and an archive store of one's own (never reached: no pod starts), so
# that no bundled store runs either.
QUIET = {
    "operator": {"replicaCount": 0},
    "api": {"replicaCount": 0},
    "archive": {"s3": {"endpoint": "https://s3.example.com"}},
}
# What the operator does in a namespace it serves (docs/install.rst says why).
OPERATOR_NEEDS = {
    ("overseerrepositories.overseer.dev", "watch"),
    ("overseerrepositories.overseer.dev/status", "patch"),
    ("overseerjobs.overseer.dev", "create"),
    ("overseerexecutions.overseer.dev", "create"),
    ("overseerexecutions.overseer.dev/status", "patch"),
    ("configmaps", "create"),
    ("secrets", "get"),
    ("secrets", "create"),
    ("jobs.batch", "create"),
    ("jobs.batch", "delete"),
    ("pods", "watch"),
    ("pods/log", "get"),
    ("pods/exec", "create"),
    ("serviceaccounts", "create"),
    ("events", "create"),
}
API_NEEDS = {
    ("overseerjobs.overseer.dev", "watch"),
    ("overseerexecutions.overseer.dev", "create"),
    ("overseerjobs.overseer.dev", "patch"),
    ("leases.coordination.k8s.io", "create"),
    ("secrets", "get"),
}
# Rows every authenticated identity gets (system:basic-user, system:discovery...).
EVERYONE = {
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}
# Cluster-scoped reads the operator keeps when serving a list (kopf, Service ranges).
CLUSTER_READS = {
    "customresourcedefinitions.apiextensions.k8s.io",
    "namespaces",
    "servicecidrs.networking.k8s.io",
    "services",  # resourceNames [kubernetes], get
}


def release_name() -> str:
    """A release of its own: its ClusterRoles must not meet another install's."""
    return f"t{secrets.token_hex(3)}"


def account(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def can_i_list(cluster: Cluster, who: str, namespace: str) -> set[tuple[str, str]]:
    """(resource, verb) pairs ``kubectl auth can-i --list`` shows for WHO in NAMESPACE."""
    out = cluster.run("auth", "can-i", "--list", f"--as={who}", "-n", namespace).stdout
    pairs = set()
    for line in out.splitlines()[1:]:
        columns = re.split(r"\s{2,}", line.strip())
        if len(columns) < 4 or not columns[0]:
            continue  # a non-resource URL row
        resource, verbs = columns[0], columns[-1].strip("[]").split()
        pairs |= {(resource, verb) for verb in verbs}
    return pairs


def can_i(cluster: Cluster, who: str, namespace: str, verb: str, resource: str) -> bool:
    name, _, sub = resource.partition("/")
    extra = [f"--subresource={sub}"] if sub else []
    result = cluster.run(
        "auth", "can-i", verb, name, *extra, f"--as={who}", "-n", namespace, check=False
    )
    assert result.stdout.strip() in {"yes", "no"}, result.stderr
    return result.stdout.strip() == "yes"


@pytest.fixture
def two_namespaces(kube_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[list[str]]:
    made = [kube_cluster.create_namespace(f"{request.node.name}-{n}") for n in "ab"]
    try:
        yield made
    finally:
        for name in made:
            kube_cluster.delete_namespace(name)


def resources(pairs: set[tuple[str, str]]) -> set[str]:
    return {resource for resource, _ in pairs}


def test_served_namespaces_get_what_is_used_there_and_other_namespaces_nothing(
    helm: str, kube: Kube, two_namespaces: list[str]
) -> None:
    cluster = kube.cluster
    # Given the chart installed to serve namespaces a and b
    values = {**QUIET, "watchNamespaces": two_namespaces}
    with helm_.installed(helm, cluster, release_name(), kube.namespace, values) as release:
        operator = account(kube.namespace, f"{release.name}-overseer-operator")
        api = account(kube.namespace, f"{release.name}-overseer-api")
        # Then in a and b each ServiceAccount may do what it uses
        for namespace in two_namespaces:
            granted = can_i_list(cluster, operator, namespace)
            assert granted >= OPERATOR_NEEDS, OPERATOR_NEEDS - granted
            assert ("pods", "create") not in granted
            assert not can_i(cluster, operator, namespace, "create", "serviceaccounts/token")
            assert not can_i(cluster, operator, namespace, "list", "secrets")
            assert not can_i(cluster, operator, namespace, "create", "pods/attach")
            assert can_i_list(cluster, api, namespace) >= API_NEEDS
            assert not can_i(cluster, api, namespace, "create", "pods/exec")
        # and in kube-system, the release's own namespace and any other, nothing namespaced
        for namespace in ("kube-system", "default", kube.namespace):
            assert resources(can_i_list(cluster, operator, namespace)) <= EVERYONE | CLUSTER_READS
            assert resources(can_i_list(cluster, api, namespace)) <= EVERYONE
            for who in (operator, api):
                for verb, resource in (
                    ("get", "secrets"),
                    ("create", "pods/exec"),
                    ("get", "pods/log"),
                    ("create", "jobs"),
                    ("delete", "configmaps"),
                ):
                    assert not can_i(cluster, who, namespace, verb, resource), (who, namespace)


def test_by_default_only_the_release_namespace_is_served(helm: str, kube: Kube) -> None:
    cluster = kube.cluster
    # Given the chart installed with its defaults (nothing scaled up)
    with helm_.installed(helm, cluster, release_name(), kube.namespace, QUIET) as release:
        operator = account(kube.namespace, f"{release.name}-overseer-operator")
        # Then the operator may neither read Secrets nor exec into pods in kube-system
        assert not can_i(cluster, operator, "kube-system", "get", "secrets")
        assert not can_i(cluster, operator, "kube-system", "create", "pods/exec")
        assert resources(can_i_list(cluster, operator, "kube-system")) <= EVERYONE | CLUSTER_READS
        # and serves its own namespace
        granted = can_i_list(cluster, operator, kube.namespace)
        assert granted >= OPERATOR_NEEDS, OPERATOR_NEEDS - granted
