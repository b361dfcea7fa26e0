"""The floor of bench/sync.py: the very objects the sync wrote, applied by bare kubectl.

After the operator's initial sync, the benchmark reads the OverseerJobs it wrote,
strips what the API server set on them (:func:`build_floor_objects`) and times
``--processes`` (8) parallel ``kubectl apply --server-side`` of them into a fresh
namespace of the same cluster: CRDs installed, no operator watching it, a stand-in
OverseerRepository (suspended, never synced) as their owner so that the garbage
collector keeps them, the objects dealt round-robin to the processes. That is the
cost of the writes alone, with a client that does nothing else; the sync's ratio to
it is what Overseer adds.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import audit  # (next to this file)
import execution_figures
from tests.support import cluster as test_cluster

SERVER_SET_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "namespace",
    "selfLink",
)
"""Metadata the API server sets (or the namespace the floor replaces)."""
SERVER_DEFAULTED_SPEC = ("active",)
"""``spec.active``: defaulted by the CRD's schema; the sync never sends it (the API owns it)."""
STAND_IN = "bench"


def build_floor_objects(items: Iterable[Mapping[str, Any]], owner_uid: str) -> list[dict[str, Any]]:
    """The bodies the sync sent, as read back: without status, server-set metadata and
    server defaults; owner references pointed at the floor's stand-in repository."""
    objects = []
    for item in items:
        body = json.loads(json.dumps(item))
        body.pop("status", None)
        meta = body["metadata"]
        for key in SERVER_SET_METADATA:
            meta.pop(key, None)
        for owner in meta.get("ownerReferences") or ():
            owner["uid"] = owner_uid
        for key in SERVER_DEFAULTED_SPEC:
            (body.get("spec") or {}).pop(key, None)
        objects.append(body)
    return objects


def deal(objects: Sequence[dict[str, Any]], processes: int) -> list[list[dict[str, Any]]]:
    """The objects dealt round-robin into PROCESSES lists (empty ones left out)."""
    return [list(objects[i::processes]) for i in range(processes) if objects[i::processes]]


@dataclasses.dataclass(frozen=True)
class Cpu:
    """CPU seconds of the client (the operator, or the floor's kubectl processes),
    kube-apiserver and etcd (host processes of the local cluster; 0 when not found)."""

    client: float
    apiserver: float
    etcd: float

    @classmethod
    def now(cls, client: float) -> Cpu:
        apiserver = execution_figures.cpu_of(execution_figures.process_named("kube-apiserver"))
        etcd = execution_figures.cpu_of(execution_figures.process_named("etcd"))
        return cls(client, apiserver, etcd)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(
            self.client - other.client, self.apiserver - other.apiserver, self.etcd - other.etcd
        )

    def __str__(self) -> str:
        return f"{self.client:.1f}s / {self.apiserver:.1f}s / {self.etcd:.1f}s"


def children_cpu() -> float:
    """CPU seconds of this process's ended children (the kubectl processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclasses.dataclass(frozen=True)
class Floor:
    """One floor run: its time, what it applied, and what it cost."""

    seconds: float
    objects: int
    processes: int
    audited: int
    """Write calls the API server audited in the floor's namespace, by kubectl."""
    cpu: Cpu
    """The kubectl processes' CPU, kube-apiserver's and etcd's, while they ran."""


def read_written(kube: test_cluster.Kube) -> list[dict[str, Any]]:
    """Every OverseerJob of the namespace, as the API server holds it."""
    listed = json.loads(kube.kubectl("get", "overseerjobs", "-o", "json").stdout)
    items: list[dict[str, Any]] = listed["items"]
    return items


def measure(
    cluster: test_cluster.Cluster,
    written: Sequence[Mapping[str, Any]],
    processes: int,
    workdir: Path,
    audit_log: Path,
) -> Floor:
    """Apply WRITTEN into a fresh namespace with PROCESSES kubectl, timed; then remove it."""
    namespace = cluster.create_namespace("bench-sync-floor")
    kube = test_cluster.Kube(cluster, namespace)
    try:
        stand_in = {
            "apiVersion": "overseer.dev/v1alpha1",
            "kind": "OverseerRepository",
            "metadata": {"name": STAND_IN},
            "spec": {"url": "file:///nowhere", "suspend": True},
        }
        kube.create(stand_in)
        uid = kube.get("overseerrepository", STAND_IN)["metadata"]["uid"]
        files = []
        for number, part in enumerate(deal(build_floor_objects(written, uid), processes)):
            path = workdir / f"floor-{number}.json"
            path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": part}))
            files.append(path)
        mark = audit.AuditMark.now(audit_log)
        cpu_before = Cpu.now(children_cpu())
        started = time.monotonic()
        seconds = run_kubectl(cluster, namespace, files) - started
        cpu = Cpu.now(children_cpu()) - cpu_before
        applied = count_objects(kube)
        if applied != len(written):
            raise RuntimeError(f"the floor applied {applied} of {len(written)} objects")
        audited = sum(1 for e in mark.writes_since(namespace) if audit.writer(e) == "kubectl")
        return Floor(seconds, len(written), len(files), audited, cpu)
    finally:
        cluster.delete_namespace(namespace)
        cluster.run("wait", "--for=delete", f"namespace/{namespace}", "--timeout=600s", check=False)


def run_kubectl(cluster: test_cluster.Cluster, namespace: str, files: Sequence[Path]) -> float:
    """Run one ``kubectl apply --server-side`` per file at once; when the last one ended."""
    running = [
        subprocess.Popen(
            [
                cluster.kubectl,
                "--kubeconfig",
                str(cluster.kubeconfig),
                "-n",
                namespace,
                "apply",
                "--server-side",
                "-f",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for path in files
    ]
    failed = []
    for process in running:
        _, stderr = process.communicate()
        if process.returncode:
            failed.append(stderr.decode(errors="replace")[-500:])
    ended = time.monotonic()
    if failed:
        raise RuntimeError(f"kubectl apply failed: {failed[0]}")
    return ended


def count_objects(kube: test_cluster.Kube) -> int:
    path = f"/apis/overseer.dev/v1alpha1/namespaces/{kube.namespace}/overseerjobs?limit=1"
    data = json.loads(kube.cluster.run("get", "--raw", path).stdout)
    return len(data["items"]) + int(data["metadata"].get("remainingItemCount") or 0)
