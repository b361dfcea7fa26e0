"""Fixtures for end-to-end tests: Overseer's CRDs on the cluster and a running operator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_process import ApiProcess, run_api
from tests.support.cluster import REPO, Cluster, Kube
from tests.support.operator import OperatorProcess, run_operator


@pytest.fixture(scope="session")
def overseer_crds(kube_cluster: Cluster) -> None:
    """Install (or update) the CRDs from manifests/ and wait until they are served."""
    kube_cluster.run(
        "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "manifests" / "crds.yaml")
    )
    for plural in ("overseerrepositories", "overseerjobs", "overseerexecutions"):
        kube_cluster.run(
            "wait", "--for=condition=Established", f"crd/{plural}.overseer.dev", "--timeout=60s"
        )


@pytest.fixture
def operator(kube: Kube, overseer_crds: None, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The real operator, watching only this test's namespace."""
    with run_operator(kube.cluster, kube.namespace, tmp_path) as process:
        yield process
        # The operator's finalizer holds each repository until its sync daemon stops:
        # delete them while the operator still runs, or the namespace never goes away.
        kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


@pytest.fixture
def api(kube: Kube, operator: OperatorProcess, tmp_path: Path) -> Iterator[ApiProcess]:
    """The real API as a process beside the operator: same namespace, same archive."""
    with run_api(kube.cluster, kube.namespace, tmp_path) as process:
        yield process
