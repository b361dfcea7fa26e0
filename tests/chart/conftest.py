"""Fixtures for the chart tests: our pinned helm, and rendering with given values.

No cluster is needed, only the helm binary the local cluster is built with
(hack/build-kube.sh, cached): ``$HELM`` when set, else the local cluster's
bin folder, else whatever hack/build-kube.sh prints if it finishes quickly (a
warm cache). Without one the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "overseer"
BUILD_KUBE = ROOT / "hack" / "build-kube.sh"
LOCAL_STATE = Path(os.environ.get("OVERSEER_CLUSTER_DIR", "/var/lib/overseer-cluster"))
RELEASE = "overseer"
NAMESPACE = "overseer-system"
# Our helm is built without the ldflags that set its default Kubernetes version (v1.20,
# below the chart's kubeVersion); hack/render-manifests.sh passes the same.
KUBE_VERSION = "v1.34.0"
# A warm hack/build-kube.sh answers at once; a cold one compiles for 15-40 minutes.
BUILD_KUBE_PATIENCE = 120


def _find_helm() -> tuple[str | None, str]:
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


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the helm binary (the test is skipped when there is none)."""
    found, why = _find_helm()
    if found is None:
        pytest.skip(f"no helm binary: {why}")
    return found


@dataclass(frozen=True)
class Rendered:
    """The outcome of one `helm template`: objects when it worked, the error when not."""

    returncode: int
    objects: list[dict[str, Any]]
    stderr: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]


Render = Callable[..., Rendered]


@pytest.fixture(scope="session")
def render(helm: str, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """render(values=None, *helm_args) -> Rendered: `helm template` of the chart."""
    folder = tmp_path_factory.mktemp("values")

    def run(values: dict[str, Any] | None = None, *args: str) -> Rendered:
        command = [
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            *args,
        ]
        if values is not None:
            values_file = folder / f"values-{len(list(folder.iterdir()))}.yaml"
            values_file.write_text(yaml.safe_dump(values))
            command += ["--values", str(values_file)]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        objects = (
            [o for o in yaml.safe_load_all(result.stdout) if o] if result.returncode == 0 else []
        )
        return Rendered(result.returncode, objects, result.stderr)

    return run
