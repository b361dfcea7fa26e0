"""Fixtures for the chart tests: our pinned helm, and rendering with given values.

No cluster is needed, only the helm binary the local cluster is built with
(tests/support/helm.py says how it is found). Without one the tests are skipped
with the reason.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import helm as helm_

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "overseer"
RELEASE = "overseer"
NAMESPACE = "overseer-system"
KUBE_VERSION = helm_.KUBE_VERSION


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the helm binary (the test is skipped when there is none)."""
    found, why = helm_.find_helm()
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
