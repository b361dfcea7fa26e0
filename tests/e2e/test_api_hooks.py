"""Push hooks through the real API process: signed deliveries request a sync, forged ones do not.

Given repositories on the real cluster (one naming a hook Secret, one not) and the
API serving their namespace, deliveries signed as GitHub, Gitea and GitLab sign them
set the repository's sync request annotation, saying which host asked; anything
else leaves it alone. No operator runs: the annotation is the contract with it
(the operator's own tests show it syncs when the annotation changes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from overseer.core import push_hooks, sync
from tests.support.api_process import run_api
from tests.support.cluster import Kube

pytestmark = pytest.mark.cluster

SECRET = "It's a Secret to Everybody"
PUSH = json.dumps({"ref": "refs/heads/main", "after": "c0ffee"}).encode()


def repository(name: str, secret_ref: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": "file:///nowhere/jobs.git", "suspend": True}
    if secret_ref:
        spec["hookSecretRef"] = {"name": secret_ref}
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerRepository",
        "metadata": {"name": name},
        "spec": spec,
    }


def requested(kube: Kube, name: str) -> tuple[str | None, str | None]:
    annotations = kube.get("overseerrepository", name)["metadata"].get("annotations") or {}
    return (
        annotations.get(sync.REQUESTED_SYNC_ANNOTATION),
        annotations.get(sync.REQUESTED_BY_ANNOTATION),
    )


def github(body: bytes, event: str = "push", secret: str = SECRET) -> dict[str, str]:
    signature = push_hooks.sign(secret.encode(), body)
    return {"X-Hub-Signature-256": f"sha256={signature}", "X-GitHub-Event": event}


def test_signed_pushes_request_a_sync_and_forged_ones_are_refused(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    # Given a repository naming a hook Secret, one naming none, and the API
    kube.kubectl("create", "secret", "generic", "hooks", f"--from-literal=token={SECRET}")
    for body in (repository("jobs", "hooks"), repository("plain", None)):
        kube.kubectl("apply", "-f", "-", input=json.dumps(body))
    with run_api(kube.cluster, kube.namespace, tmp_path) as api:
        hook = f"{api.url}/hooks/git/jobs"

        # When a delivery is forged, or unsigned: 401, nothing requested
        forged = httpx.post(hook, content=PUSH, headers=github(PUSH, secret="guess"))
        assert forged.status_code == 401, forged.text
        assert forged.headers["content-type"] == "application/problem+json"
        assert "X-Hub-Signature-256" in forged.json()["detail"]
        assert httpx.post(hook, content=PUSH).status_code == 401
        assert requested(kube, "jobs") == (None, None)

        # When GitHub pings: acknowledged, nothing requested
        ping = httpx.post(hook, content=b"{}", headers=github(b"{}", "ping"))
        assert ping.status_code == 202, ping.text
        assert ping.json()["syncRequested"] is False
        assert requested(kube, "jobs") == (None, None)

        # When GitHub, Gitea and GitLab deliver a push: each requests a sync, named
        for provider, headers in [
            ("github", github(PUSH)),
            (
                "gitea",
                {
                    "X-Gitea-Signature": push_hooks.sign(SECRET.encode(), PUSH),
                    "X-Gitea-Event": "push",
                },
            ),
            ("gitlab", {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook"}),
        ]:
            before, _ = requested(kube, "jobs")
            answer = httpx.post(hook, content=PUSH, headers=headers)
            assert answer.status_code == 202, answer.text
            assert answer.json() == {
                "repository": "jobs",
                "namespace": kube.namespace,
                "provider": provider,
                "event": headers.get("X-GitHub-Event")
                or headers.get("X-Gitea-Event")
                or headers["X-Gitlab-Event"],
                "syncRequested": True,
                "delivery": None,
                "duplicate": False,
                "ignored": None,
            }
            at, by = requested(kube, "jobs")
            assert at is not None and at != before and by == f"hook:{provider}"

        # And the namespaced path serves the same
        namespaced = f"{api.url}/namespaces/{kube.namespace}/hooks/git/jobs"
        assert httpx.post(namespaced, content=PUSH, headers=github(PUSH)).status_code == 202

        # But a repository without a hook Secret, or none at all, accepts no hooks
        for name in ("plain", "missing"):
            answer = httpx.post(f"{api.url}/hooks/git/{name}", content=PUSH, headers=github(PUSH))
            assert answer.status_code == 404, answer.text
            assert "hookSecretRef" in answer.json()["detail"]
        assert requested(kube, "plain") == (None, None)


def test_a_delivery_syncs_once_and_a_push_elsewhere_not_at_all(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    # Given a repository syncing main, with a hook Secret, and the API
    kube.kubectl("create", "secret", "generic", "hooks", f"--from-literal=token={SECRET}")
    body = repository("jobs", "hooks")
    body["spec"]["ref"] = "main"
    kube.kubectl("apply", "-f", "-", input=json.dumps(body))
    with run_api(kube.cluster, kube.namespace, tmp_path) as api:
        hook = f"{api.url}/hooks/git/jobs"
        delivered = {**github(PUSH), "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
        # When GitHub delivers a push to main, then delivers it again
        first = httpx.post(hook, content=PUSH, headers=delivered)
        assert first.status_code == 202 and first.json()["syncRequested"] is True, first.text
        at, _ = requested(kube, "jobs")
        again = httpx.post(hook, content=PUSH, headers=delivered)
        # Then the repeat is answered as a duplicate and requests nothing
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True
        assert requested(kube, "jobs")[0] == at
        # And a push to another branch requests nothing either
        other = json.dumps({"ref": "refs/heads/feature"}).encode()
        ignored = httpx.post(hook, content=other, headers=github(other))
        assert ignored.status_code == 202
        assert ignored.json()["syncRequested"] is False
        assert "refs/heads/feature" in ignored.json()["ignored"]
        assert requested(kube, "jobs")[0] == at
    # And the delivery id outlives the API process: it is kept in the cluster
    with run_api(kube.cluster, kube.namespace, tmp_path) as api:
        after = httpx.post(f"{api.url}/hooks/git/jobs", content=PUSH, headers=delivered)
        assert after.status_code == 200 and after.json()["duplicate"] is True, after.text
    assert requested(kube, "jobs")[0] == at
