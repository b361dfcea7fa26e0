"""The kubernetes auth mode against the real API server, with two real ServiceAccounts.

Given a namespace with ServiceAccount ``allowed`` (a Role grants it Overseer's
read and execute verbs) and ``denied`` (no Role), and their tokens from the
TokenRequest API: TokenReview names each, SubjectAccessReview answers per scope,
and a garbage token is nobody.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from overseer import kube as kube_
from overseer_api import auth
from overseer_api.kubernetes_auth import KubernetesAuthenticator
from tests.support.api_process import run_api
from tests.support.cluster import Kube

pytestmark = pytest.mark.cluster

ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "overseer-user"},
    "rules": [
        {"apiGroups": ["overseer.dev"], "resources": ["overseerjobs"], "verbs": ["get", "list"]},
        {"apiGroups": ["overseer.dev"], "resources": ["overseerexecutions"], "verbs": ["create"]},
    ],
}


def service_account_tokens(kube: Kube) -> dict[str, str]:
    """ServiceAccounts ``allowed`` (bound to ROLE) and ``denied``, and a token of each."""
    for name in ("allowed", "denied"):
        kube.kubectl("create", "serviceaccount", name)
    kube.kubectl("apply", "-f", "-", input=json.dumps(ROLE))
    kube.kubectl(
        "create", "rolebinding", "overseer-user", "--role=overseer-user",
        f"--serviceaccount={kube.namespace}:allowed",
    )  # fmt: skip
    return {
        name: kube.kubectl("create", "token", name, "--duration=10m").stdout.strip()
        for name in ("allowed", "denied")
    }


async def test_token_and_access_reviews_decide_with_rbac(kube: Kube) -> None:
    # Given two ServiceAccounts, one bound to a Role granting read and execute
    tokens = service_account_tokens(kube)
    client = kube_.Kube.connect(str(kube.cluster.kubeconfig))
    authenticator = KubernetesAuthenticator(client, ttl=1)
    try:
        # When their tokens and a garbage one are reviewed
        allowed = await authenticator.authenticate(tokens["allowed"])
        denied = await authenticator.authenticate(tokens["denied"])
        nobody = await authenticator.authenticate("garbage." + tokens["denied"][8:])
        # Then the API server names each ServiceAccount, and nobody for the garbage
        assert allowed is not None and denied is not None
        assert allowed.name == f"system:serviceaccount:{kube.namespace}:allowed"
        assert denied.name == f"system:serviceaccount:{kube.namespace}:denied"
        assert nobody is None
        # And RBAC decides each scope in the namespace the Role is in, and only there
        ns = kube.namespace
        assert await authenticator.authorize(allowed, auth.Scope.READ, ns)
        assert await authenticator.authorize(allowed, auth.Scope.EXECUTE, ns)
        assert not await authenticator.authorize(allowed, auth.Scope.ADMIN, ns)
        assert not await authenticator.authorize(allowed, auth.Scope.READ, "default")
        for scope in auth.Scope:
            assert not await authenticator.authorize(denied, scope, ns)
    finally:
        await client.close()


def test_the_api_in_kubernetes_mode_answers_by_rbac(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    # Given the two ServiceAccounts and the API in kubernetes mode
    tokens = service_account_tokens(kube)
    kubernetes_mode = {"OVERSEER_API_AUTH": "kubernetes"}
    with run_api(kube.cluster, kube.namespace, tmp_path, extra_env=kubernetes_mode) as api:
        jobs = f"{api.url}/jobs"

        def get(token: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.get(jobs, headers=headers)

        # When each calls GET /jobs: the Role's holder reads, the other is refused
        assert get(tokens["allowed"]).status_code == 200
        refused = get(tokens["denied"])
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "read" in refused.json()["detail"]
        # And a garbage token, or none, is nobody: 401 with a challenge
        for token in ("garbage." + tokens["denied"][8:], None):
            answer = get(token)
            assert answer.status_code == 401, answer.text
            assert answer.headers["www-authenticate"].startswith("Bearer")
        # And no token is ever written to the log
        assert tokens["allowed"] not in api.log() and tokens["denied"] not in api.log()
