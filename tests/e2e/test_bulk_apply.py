"""The sync's applies (``Kube.apply_encoded``, over aiohttp) against the real API server.

With the local cluster's own credentials (client certificates), and with a
ServiceAccount's token read from a file, as the operator in the cluster has it (the
chart's ServiceAccount token): the OverseerJob is stored, owned by Overseer's field
manager; a ServiceAccount without the right is refused with its status.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from overseer import errors
from overseer import kube as kube_
from overseer.core import definitions, repository_sync, sync, write_pacing
from tests.support.cluster import Kube

pytestmark = pytest.mark.cluster

JOBS = "- name: Nightly report\n  command: [sh, -c, 'echo report']\n  schedule: '0 3 * * *'\n"
ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "overseer-sync"},
    "rules": [
        {"apiGroups": ["overseer.dev"], "resources": ["overseerjobs"], "verbs": ["create", "patch"]}
    ],
}


def encoded_job(namespace: str) -> tuple[str, bytes]:
    """The name and encoded body of an OverseerJob as the sync applies it (no owner)."""
    result = definitions.parse_repository({"jobs/nightly.yml": JOBS}, "defaults: {image: busybox}")
    owner = repository_sync.Owner(namespace, "repo", "00000000-0000-0000-0000-000000000000")
    [(name, desired)] = repository_sync.build_desired_jobs(owner, "0" * 40, result).items()
    body = sync.build_apply_body(name, desired)
    del body["metadata"]["ownerReferences"]  # no repository here: the collector would delete
    return name, write_pacing.encode(body)


def token_kubeconfig(kube: Kube, token_file: Path, path: Path) -> Path:
    """The cluster's kubeconfig with its user replaced by a token read from ``token_file``."""
    config: dict[str, Any] = yaml.safe_load(kube.cluster.kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    user = {"name": context["context"]["user"], "user": {"tokenFile": str(token_file)}}
    path.write_text(json.dumps({**config, "users": [user]}))
    return path


def stored(kube: Kube, name: str) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """The OverseerJob ``name`` as stored, and its field managers with their operations."""
    out = kube.kubectl("get", "overseerjob", name, "--show-managed-fields", "-o", "json").stdout
    job = json.loads(out)
    return job, {(m["manager"], m["operation"]) for m in job["metadata"]["managedFields"]}


async def test_an_apply_with_the_clusters_client_certificates_is_stored(
    kube: Kube, overseer_crds: None
) -> None:
    config = yaml.safe_load(kube.cluster.kubeconfig.read_text())
    users = [u["user"] for u in config["users"]]
    if not any("client-certificate" in u or "client-certificate-data" in u for u in users):
        pytest.skip("this cluster's kubeconfig has no client certificates")
    name, data = encoded_job(kube.namespace)
    client = kube_.Kube.connect(str(kube.cluster.kubeconfig))
    try:
        await client.apply_encoded("OverseerJob", kube.namespace, name, data)
        await client.apply_encoded("OverseerJob", kube.namespace, name, data)  # kept alive
    finally:
        await client.close()
    job, managers = stored(kube, name)
    assert job["spec"]["displayName"] == "Nightly report"
    assert managers == {("overseer", "Apply")}


async def test_an_apply_with_a_service_account_token_is_stored_and_refused_without_the_right(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    # Given a ServiceAccount that may patch OverseerJobs, one that may not, and their tokens
    for account in ("sync", "nobody"):
        kube.kubectl("create", "serviceaccount", account)
    kube.apply(ROLE)
    kube.kubectl(
        "create", "rolebinding", "overseer-sync", "--role=overseer-sync",
        f"--serviceaccount={kube.namespace}:sync",
    )  # fmt: skip
    clients = {}
    for account in ("sync", "nobody"):
        token = tmp_path / f"{account}.token"
        token.write_text(kube.kubectl("create", "token", account, "--duration=10m").stdout)
        config = token_kubeconfig(kube, token, tmp_path / f"{account}.kubeconfig")
        clients[account] = kube_.Kube.connect(str(config))
    name, data = encoded_job(kube.namespace)
    try:
        # When each applies the job
        await clients["sync"].apply_encoded("OverseerJob", kube.namespace, name, data)
        with pytest.raises(errors.KubeError) as refused:
            await clients["nobody"].apply_encoded("OverseerJob", kube.namespace, name, data)
    finally:
        for client in clients.values():
            await client.close()
    # Then the allowed one's is stored under Overseer's manager; the other is refused
    assert stored(kube, name)[1] == {("overseer", "Apply")}
    assert refused.value.status == 403
    assert f"system:serviceaccount:{kube.namespace}:nobody" in refused.value.message
