"""Our pinned helm binary, and a release of this checkout's chart for a test.

No cluster is needed to find helm, only the one the local cluster is built with
(hack/build-kube.sh, cached): ``$HELM`` when set, else the local cluster's bin
folder, else whatever hack/build-kube.sh prints if it finishes quickly (a warm
cache).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cluster import LOCAL_STATE, REPO, Cluster

CHART = REPO / "charts" / "overseer"
BUILD_KUBE = REPO / "hack" / "build-kube.sh"
# Our helm is built without the ldflags that set its default Kubernetes version (v1.20,
# below the chart's kubeVersion); hack/render-manifests.sh passes the same.
KUBE_VERSION = "v1.34.0"
# A warm hack/build-kube.sh answers at once; a cold one compiles for 15-40 minutes.
BUILD_KUBE_PATIENCE = 120


def find_helm() -> tuple[str | None, str]:
    """The helm binary, or None and why not."""
    configured = os.environ.get("HELM")
    if configured:
        return configured, ""
    bin_path = LOCAL_STATE / "bin-path"
    if bin_path.is_file():
        candidate = Path(bin_path.read_text().strip()) / "helm"
        if os.access(candidate, os.X_OK):
            return str(candidate), ""
    if not BUILD_KUBE.exists():
        return None, f"{BUILD_KUBE} is missing"
    process = subprocess.Popen(
        ["bash", str(BUILD_KUBE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=BUILD_KUBE_PATIENCE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        return None, (
            f"hack/build-kube.sh did not finish in {BUILD_KUBE_PATIENCE}s (its cache is cold: "
            "building Kubernetes and helm takes 15-40 minutes); run it once, or make cluster-up, "
            "or set HELM to a helm 3 binary"
        )
    built = Path(out.strip().splitlines()[-1]) / "helm" if out.strip() else None
    if process.returncode or built is None or not os.access(built, os.X_OK):
        return None, f"hack/build-kube.sh failed (exit {process.returncode}); no helm to test with"
    return str(built), ""


@dataclass(frozen=True)
class Release:
    """An installed release of charts/overseer in one namespace."""

    helm: str
    cluster: Cluster
    name: str
    namespace: str

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.helm, "--kubeconfig", str(self.cluster.kubeconfig), "-n", self.namespace, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def upgrade(self, values: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
        """``helm upgrade --install --wait`` of this checkout's chart with VALUES."""
        command = [
            self.helm, "--kubeconfig", str(self.cluster.kubeconfig), "-n", self.namespace,
            "upgrade", "--install", self.name, str(CHART), "--wait", "--timeout", "5m",
            "--values", "-", *args,
        ]  # fmt: skip
        return subprocess.run(
            command,
            input=json.dumps(values),  # JSON is YAML
            capture_output=True,
            text=True,
            check=False,
            timeout=360,
        )


@contextmanager
def installed(
    helm: str, cluster: Cluster, name: str, namespace: str, values: dict[str, Any]
) -> Iterator[Release]:
    """Install the chart (waiting until its pods are ready); uninstall it afterwards, so that
    its cluster-scoped objects (ClusterRoles, bindings) do not outlive the test."""
    release = Release(helm, cluster, name, namespace)
    try:
        result = release.upgrade(values)
        if result.returncode:
            raise AssertionError(f"helm install {name} failed:\n{result.stdout}{result.stderr}")
        yield release
    finally:
        release.run("uninstall", name, "--wait", "--timeout", "2m", timeout=180)
