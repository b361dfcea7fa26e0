"""Connect tests to a real Kubernetes cluster and drive it with kubectl.

kubectl is the interface users have, so the end-to-end tests speak it too:
what a test does can be replayed by hand from its command lines.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "hack" / "cluster.sh"
LOCAL_STATE = Path(os.environ.get("OVERSEER_CLUSTER_DIR", "/var/lib/overseer-cluster"))
# Context names that only ever point at disposable clusters.
TEST_CONTEXTS = (
    "overseer-local",
    "kind-*",
    "k3d-*",
    "minikube",
    "docker-desktop",
    "*-test",
    "test-*",
)


class ClusterRefusedError(RuntimeError):
    """The configured cluster is not one the tests may write to."""


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    kubectl: str
    context: str

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=300,
        )

    def create_namespace(self, test_name: str) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
        name = f"t-{slug}-{secrets.token_hex(3)}"
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"overseer.dev/test": "true"}},
        }
        self.run("apply", "-f", "-", input=json.dumps(manifest))
        # Pods need the namespace's default service account before they are admitted.
        deadline = time.monotonic() + 60
        while self.run("-n", name, "get", "serviceaccount", "default", check=False).returncode:
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespace {name} got no default service account")
            time.sleep(0.2)
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete a test's namespace, after its operator has stopped.

        The operator's finalizer on a repository left behind by a failed test would hold
        the namespace in Terminating forever (no operator watches it any more): drop it.
        """
        listed = self.run(
            "-n", name, "get", "overseerrepositories", "-o", "name", check=False
        ).stdout.split()
        for resource in listed:
            self.run(
                "-n", name, "patch", resource, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False,
            )  # fmt: skip
        self.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)

    @property
    def audit_log(self) -> Path | None:
        """The API server's audit log (writes only), when this host can read it."""
        configured = os.environ.get("OVERSEER_TEST_AUDIT_LOG")
        path = Path(configured) if configured else LOCAL_STATE / "logs" / "audit.log"
        local = self.context == "overseer-local" or configured
        return path if local and path.exists() else None

    def require_audit_log(self) -> Path:
        """The audit log, or the test ends at once: failed where there must be one.

        The local cluster (hack/cluster.sh) always writes one, and so must a cluster
        whose log is named by ``OVERSEER_TEST_AUDIT_LOG``: a missing one is a failure.
        Another cluster may have none: the test is skipped, saying so, before it runs.
        """
        path = self.audit_log
        if path is not None:
            return path
        configured = os.environ.get("OVERSEER_TEST_AUDIT_LOG")
        if configured or self.context == "overseer-local":
            where = configured or str(LOCAL_STATE / "logs" / "audit.log")
            pytest.fail(
                f"the API server's audit log {where} is missing or unreadable; the local "
                "cluster writes it (hack/cluster.sh): writes cannot be counted without it"
            )
        pytest.skip(
            f"context {self.context!r} has no API server audit log this host can read; "
            "set OVERSEER_TEST_AUDIT_LOG to count writes"
        )

    def audited_writes(self, since: int, namespace: str) -> list[dict[str, Any]]:
        """Write requests in NAMESPACE audited after byte offset SINCE of the audit log."""
        path = self.audit_log
        assert path is not None, "no audit log (set OVERSEER_TEST_AUDIT_LOG for this cluster)"
        with path.open("rb") as log:
            log.seek(since)
            entries = [json.loads(line) for line in log if line.strip()]
        return [
            e
            for e in entries
            if e.get("stage") == "ResponseComplete"
            and e.get("verb") in {"create", "update", "patch", "delete", "deletecollection"}
            and (e.get("objectRef") or {}).get("namespace") == namespace
        ]

    def node_address(self) -> str:
        """The node's InternalIP: where pods reach servers the tests run on this host."""
        override = os.environ.get("OVERSEER_TEST_HOST_IP")
        if override:
            return override
        out = self.run(
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}",
        ).stdout
        return out.split()[0]


class Kube:
    """kubectl bound to one namespace, with the waits tests need."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.run("-n", self.namespace, *args, input=input, check=check)

    def apply(
        self, *manifests: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests), check=check)

    def create(
        self, manifest: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl("create", "-f", "-", input=json.dumps(manifest), check=check)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.kubectl("get", kind, name, "-o", "json").stdout)
        return result

    def wait_for(self, kind: str, name: str, condition: str, timeout: int = 120) -> None:
        self.kubectl("wait", f"--for={condition}", f"{kind}/{name}", f"--timeout={timeout}s")

    def wait_for_pod_end(self, name: str, timeout: float = 120) -> str:
        """Wait until pod NAME has Succeeded or Failed; return the phase."""
        deadline = time.monotonic() + timeout
        while True:
            phase = self.kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}").stdout
            if phase in ("Succeeded", "Failed"):
                return phase
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {name} still {phase or 'unknown'} after {timeout}s")
            time.sleep(0.5)

    def logs(self, target: str, *args: str) -> str:
        return self.kubectl("logs", target, *args).stdout


def _current_context(kubeconfig: Path, kubectl: str) -> str:
    out = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "config", "current-context"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _local_kubectl() -> str | None:
    bin_path = LOCAL_STATE / "bin-path"
    if bin_path.exists():
        candidate = Path(bin_path.read_text().strip()) / "kubectl"
        if candidate.exists():
            return str(candidate)
    return None


def connect(allow_any: bool = False) -> Cluster:
    """Return the cluster to test against, starting the local one if none is configured."""
    env_kubeconfig = os.environ.get("KUBECONFIG")
    if env_kubeconfig:
        kubeconfig = Path(env_kubeconfig.split(os.pathsep)[0])
        kubectl = _local_kubectl() or shutil.which("kubectl")
        if kubectl is None:
            raise ClusterRefusedError("KUBECONFIG is set but no kubectl was found on PATH")
        context = _current_context(kubeconfig, kubectl)
        if not allow_any and not any(fnmatch.fnmatch(context, p) for p in TEST_CONTEXTS):
            raise ClusterRefusedError(
                f"KUBECONFIG's current context {context!r} does not look like a test cluster "
                f"(names allowed: {', '.join(TEST_CONTEXTS)}). The tests create and delete "
                "namespaces; pass --allow-any-cluster if this cluster is really disposable."
            )
        return Cluster(kubeconfig, kubectl, context)
    # pytest-xdist's workers all connect at once: one brings the cluster up, the
    # others wait and then find it running (an up that cleans up a half-started
    # cluster must never race another up).
    lock = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "overseer"
    lock.mkdir(parents=True, exist_ok=True)
    with (lock / "cluster-up.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        out = subprocess.run(
            ["bash", str(CLUSTER_SCRIPT), "up"],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
    if out.returncode:
        raise RuntimeError(f"hack/cluster.sh up failed:\n{out.stderr[-4000:]}")
    kubeconfig = Path(out.stdout.strip().splitlines()[-1].split("=", 1)[1])
    kubectl = _local_kubectl()
    assert kubectl, "hack/cluster.sh up did not record its bin folder"
    return Cluster(kubeconfig, kubectl, _current_context(kubeconfig, kubectl))
