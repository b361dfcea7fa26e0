"""Each namespace signs its webhooks with its own secret, and says so in the payload.

Two tenants' namespaces, one real operator watching both, a real receiver per tenant on
this host's loopback, and a third namespace with no signing Secret. Tenant A names its
job like tenant B's and aims its hook at B's receiver: what arrives does not verify with
B's secret, and names A's namespace.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from standardwebhooks import webhooks as standard

from tests.e2e.test_executions import execute, status_of
from tests.e2e.test_webhooks import API_URL, wait_received, warnings_of
from tests.support import recorder
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

SIGNING = "overseer-webhook-signing"


def secret_of(tenant: str) -> str:
    return "whsec_" + base64.b64encode(f"tenant {tenant}'s own signing key".encode()).decode()


def verifies(secret: str, request: recorder.Request) -> bool:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        standard.Webhook(secret).verify(request.body, headers)
    except standard.WebhookVerificationError:
        return False
    return True


def hooked(url: str) -> str:
    return yaml.safe_dump([{"name": "Deploy", "command": "true", "hooks": {"start": url}}])


@pytest.fixture
def tenants(kube: Kube) -> Iterator[dict[str, Kube]]:
    """Namespaces A (the test's), B and C (no signing Secret)."""
    made = [kube.cluster.create_namespace(f"{kube.namespace}-{t}") for t in ("b", "c")]
    try:
        yield {"a": kube, "b": Kube(kube.cluster, made[0]), "c": Kube(kube.cluster, made[1])}
    finally:
        for namespace in made:
            kube.cluster.delete_namespace(namespace)


@pytest.fixture
def receivers() -> Iterator[dict[str, recorder.Recorder]]:
    with recorder.serve() as a, recorder.serve() as b:
        yield {"a": a, "b": b}


@pytest.fixture
def operator(
    tenants: dict[str, Kube], overseer_crds: None, tmp_path: Path
) -> Iterator[OperatorProcess]:
    env = {
        "OVERSEER_API_URL": API_URL,
        "OVERSEER_WEBHOOK_SECRET": secret_of("operator"),  # never used: no fallback
        "OVERSEER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
    }
    namespaces = ",".join(k.namespace for k in tenants.values())
    with run_operator(tenants["a"].cluster, namespaces, tmp_path, extra_env=env) as process:
        try:
            yield process
        finally:
            for kube in tenants.values():
                kube.kubectl(
                    "delete", "overseerrepositories", "--all", "--timeout=60s", check=False
                )


def synced(kube: Kube, tmp_path: Path, hook: str) -> dict[str, Any]:
    upstream = Upstream.create(tmp_path / kube.namespace / "jobs.git")
    upstream.commit({"jobs.yml": hooked(hook)}, "a hooked job")
    kube.apply(repository("jobs", upstream.file_url))
    job: dict[str, Any] = wait_for_jobs(kube, {"Deploy"})["Deploy"]
    return job


def test_each_namespace_signs_with_its_own_secret_and_none_goes_unsigned(
    tenants: dict[str, Kube],
    receivers: dict[str, recorder.Recorder],
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    # Given tenants A and B, each with its signing Secret, and C without one
    for tenant in ("a", "b"):
        tenants[tenant].kubectl(
            "create", "secret", "generic", SIGNING, f"--from-literal=secret={secret_of(tenant)}"
        )
    # And A's job "Deploy" hooked to B's receiver, as B's own "Deploy" is; C's to A's
    job_a = synced(tenants["a"], tmp_path, f"{receivers['b'].url}/hook")
    job_b = synced(tenants["b"], tmp_path, f"{receivers['b'].url}/hook")
    job_c = synced(tenants["c"], tmp_path, f"{receivers['a'].url}/hook")
    # When each runs
    _, id_a = execute(tenants["a"], job_a)
    _, id_b = execute(tenants["b"], job_b)
    name_c, _ = execute(tenants["c"], job_c)
    # Then B's receiver gets both starts; B's verifies with B's secret and names B
    [from_b] = wait_received(receivers["b"], id_b, 1)
    assert verifies(secret_of("b"), from_b)
    assert json.loads(from_b.body)["namespace"] == tenants["b"].namespace
    # And A's, named like B's, does not verify with B's secret: only with A's, naming A
    [from_a] = wait_received(receivers["b"], id_a, 1)
    assert json.loads(from_a.body)["job"] == "Deploy"
    assert not verifies(secret_of("b"), from_a)
    assert not verifies(secret_of("operator"), from_a)
    assert verifies(secret_of("a"), from_a)
    assert json.loads(from_a.body)["namespace"] == tenants["a"].namespace
    # And C's is not sent at all: Pending, saying why, with a Warning Event
    record = eventually(
        lambda: next(iter(status_of(tenants["c"], name_c).get("deliveries") or ()), None),
        60,
        "C's delivery record",
    )
    assert record["status"] == "Pending", record
    assert (
        f"no Secret {SIGNING} with a key secret in namespace {tenants['c'].namespace}"
        in (record["lastError"])
    )
    reasons = eventually(
        lambda: [e["reason"] for e in warnings_of(tenants["c"], name_c)], 60, "a Warning Event"
    )
    assert "WebhookNotSigned" in reasons
    assert receivers["a"].requests == [], "its attempt was recorded, nothing was sent"
    # And no signing secret was ever logged
    log = operator.log()
    for tenant in ("a", "b", "operator"):
        assert secret_of(tenant).removeprefix("whsec_") not in log
