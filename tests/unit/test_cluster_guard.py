"""The test fixtures refuse to touch a cluster that does not look disposable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.support import cluster

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:1"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: {context}, context: {{cluster: c, user: u}}}}]
current-context: {context}
"""


@pytest.fixture
def kubectl() -> str:
    found = cluster._local_kubectl() or shutil.which("kubectl")
    if found is None:
        pytest.skip("no kubectl here (make cluster-up builds one)")
    return found


@pytest.mark.parametrize("context", ["production", "gke_team_europe-west1_main", "admin@corp"])
def test_refuses_contexts_that_are_not_test_clusters(
    context: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kubectl: str
) -> None:
    config = tmp_path / "config"
    config.write_text(KUBECONFIG.format(context=context))
    monkeypatch.setenv("KUBECONFIG", str(config))
    with pytest.raises(cluster.ClusterRefusedError, match="--allow-any-cluster"):
        cluster.connect()
    assert cluster.connect(allow_any=True).context == context


@pytest.mark.parametrize("context", ["kind-overseer", "k3d-dev", "overseer-local", "minikube"])
def test_accepts_disposable_clusters(
    context: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kubectl: str
) -> None:
    config = tmp_path / "config"
    config.write_text(KUBECONFIG.format(context=context))
    monkeypatch.setenv("KUBECONFIG", str(config))
    connected = cluster.connect()
    assert (connected.context, connected.kubeconfig) == (context, config)
