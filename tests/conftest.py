"""Test-wide options and the real-cluster fixtures.

Cluster tests (marked ``cluster``) get a kubeconfig and a fresh namespace each.
``KUBECONFIG``, when set, wins, so the same tests run on kind, k3d or a cloud
cluster; a context that does not look like a test cluster is refused unless
``--allow-any-cluster`` is given. Otherwise the local cluster from hack/ is
used, and started if it is not running.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import chaos, cluster

pytest_plugins = ["tests.support.s3server"]  # s3_server, s3_bucket: a real S3 server


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("overseer")
    group.addoption(
        "--allow-any-cluster",
        action="store_true",
        default=False,
        help="run cluster tests against a KUBECONFIG context not named like a test cluster",
    )
    group.addoption(
        "--chaos",
        action="store_true",
        default=False,
        help="also run the fault suite's full runs (marked chaos; make chaos), deselected "
        "otherwise",
    )
    group.addoption(
        "--no-cluster",
        action="store_true",
        default=False,
        help="skip the tests that need a Kubernetes cluster",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--chaos"):
        # The full fault runs take minutes and stop shared components (the API server,
        # containerd): only make chaos runs them. Their short slices run everywhere.
        chaos = [item for item in items if item.get_closest_marker("chaos")]
        if chaos:
            config.hook.pytest_deselected(items=chaos)
            items[:] = [item for item in items if not item.get_closest_marker("chaos")]
    if not config.getoption("--no-cluster"):
        return
    skip = pytest.mark.skip(reason="--no-cluster given")
    for item in items:
        if "cluster" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault suite's table (make chaos): each fault, how often, what was lost."""
    lines = chaos.table(terminalreporter.config)
    if lines:
        terminalreporter.section("chaos: what each fault cost")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def kube_cluster(request: pytest.FixtureRequest) -> cluster.Cluster:
    """The cluster under test (see the module docstring for how it is chosen)."""
    return cluster.connect(allow_any=bool(request.config.getoption("--allow-any-cluster")))


@pytest.fixture
def kube(kube_cluster: cluster.Cluster, request: pytest.FixtureRequest) -> Iterator[cluster.Kube]:
    """A kubectl wrapper bound to a fresh namespace, deleted after the test."""
    namespace = kube_cluster.create_namespace(request.node.name)
    try:
        yield cluster.Kube(kube_cluster, namespace)
    finally:
        kube_cluster.delete_namespace(namespace)
