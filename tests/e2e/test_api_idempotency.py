"""Idempotency claims on the real API server: one action for one key, across restarts.

The action here creates a ConfigMap labelled with the claim (as the API labels the
executions it creates), so what the cluster holds afterwards shows how many times
it ran.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from overseer import errors
from overseer import kube as kube_
from overseer.core import idempotency as core
from overseer_api.idempotency import Idempotency
from tests.support.api_process import TOKENS, run_api
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import repository, wait_for_jobs

pytestmark = pytest.mark.cluster


@pytest.fixture
async def client(kube: Kube) -> AsyncIterator[kube_.Kube]:
    connected = kube_.Kube.connect(str(kube.cluster.kubeconfig))
    yield connected
    await connected.close()


def creating(
    client: kube_.Kube, namespace: str, delay: float = 0.0
) -> Callable[[str], Awaitable[str]]:
    async def action(claim: str) -> str:
        await asyncio.sleep(delay)  # a slow creation: the others must wait, not create
        name = f"made-{secrets.token_hex(4)}"
        await client.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {core.CLAIM_LABEL: claim},
                },
            }
        )
        return name

    return action


def made(kube: Kube) -> list[str]:
    listed = json.loads(
        kube.kubectl("get", "configmaps", "-l", core.CLAIM_LABEL, "-o", "json").stdout
    )
    return [item["metadata"]["name"] for item in listed["items"]]


async def test_twenty_concurrent_requests_with_one_key_act_once(
    kube: Kube, client: kube_.Kube
) -> None:
    # Given an idempotency store and a key
    store = Idempotency(client)
    digest = core.request_digest("POST", "/jobs/A%20job", {"x": "1"})
    action = creating(client, kube.namespace, delay=0.5)

    # When twenty identical requests arrive at once
    outcomes = await asyncio.gather(
        *(store.once(kube.namespace, "token:ci", "key-1", digest, action=action) for _ in range(20))
    )

    # Then exactly one acted, and all twenty got its result
    assert len(made(kube)) == 1
    assert {o.result for o in outcomes} == set(made(kube))
    assert sorted(o.replayed for o in outcomes) == [False] + [True] * 19

    # And a new process (a restart, another replica) replays the same result
    other = kube_.Kube.connect(str(kube.cluster.kubeconfig))
    try:
        again = await Idempotency(other).once(
            kube.namespace, "token:ci", "key-1", digest, action=creating(other, kube.namespace)
        )
    finally:
        await other.close()
    assert (again.result, again.replayed) == (outcomes[0].result, True)
    assert len(made(kube)) == 1

    # But the same key with another body is refused, and another caller's key is its own
    with pytest.raises(errors.IdempotencyKeyReusedError):
        await store.once(kube.namespace, "token:ci", "key-1", "other", action=action)
    theirs = await store.once(kube.namespace, "token:cd", "key-1", digest, action=action)
    assert not theirs.replayed and len(made(kube)) == 2


async def test_a_failed_action_frees_its_key(kube: Kube, client: kube_.Kube) -> None:
    store = Idempotency(client)

    async def failing(claim: str) -> str:
        raise errors.InvalidDefinitionError("refused")

    with pytest.raises(errors.InvalidDefinitionError):
        await store.once(kube.namespace, "token:ci", "k", "d", action=failing)
    retried = await store.once(
        kube.namespace, "token:ci", "k", "d", action=creating(client, kube.namespace)
    )
    assert not retried.replayed and made(kube) == [retried.result]


async def test_expired_claims_are_replaced_and_collected(kube: Kube, client: kube_.Kube) -> None:
    # Given a claim recorded with a lifetime that has passed
    short = Idempotency(client, ttl=timedelta(seconds=1))
    first = await short.once(
        kube.namespace, "token:ci", "k", "d", action=creating(client, kube.namespace)
    )
    await asyncio.sleep(1.1)
    # When the key comes back, its request acts again
    second = await short.once(
        kube.namespace, "token:ci", "k", "d", action=creating(client, kube.namespace)
    )
    assert not second.replayed and second.result != first.result
    # And garbage collection deletes expired claims only
    await short.once(kube.namespace, "token:ci", "k2", "d", action=creating(client, kube.namespace))
    await asyncio.sleep(1.1)
    assert await Idempotency(client).collect(kube.namespace) == 0  # 24 hours: none expired
    assert await short.collect(kube.namespace) == 2
    leases = kube.kubectl("get", "leases", "-l", core.LABEL, "-o", "name").stdout.split()
    assert leases == []


async def test_an_abandoned_claim_recovers_what_its_holder_made(
    kube: Kube, client: kube_.Kube
) -> None:
    # Given a claim whose holder created the ConfigMap and died before recording it
    stale = Idempotency(client, stale=timedelta(seconds=0))
    name = core.claim_name(kube.namespace, "token:ci", "k")
    claim = core.Claim(kube.namespace, name, "d", "token:ci", created=datetime.now(UTC))
    await client.create(core.build_claim(claim, "dead/1", timedelta(hours=24)))
    orphan = await creating(client, kube.namespace)(name)

    async def recover(claim_name: str) -> str | None:
        listed = [
            o
            async for o in client.list("ConfigMap", kube.namespace, {core.CLAIM_LABEL: claim_name})
        ]
        return listed[0]["metadata"]["name"] if listed else None

    # When the client retries with the key
    outcome = await stale.once(
        kube.namespace, "token:ci", "k", "d",
        action=creating(client, kube.namespace), recover=recover,
    )  # fmt: skip
    # Then it gets what the dead holder made, and nothing runs twice
    assert (outcome.result, outcome.replayed) == (orphan, True)
    assert made(kube) == [orphan]


# --- through the real API process -------------------------------------------------------


def executions_of(kube: Kube) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        kube.kubectl("get", "overseerexecutions", "-o", "json").stdout
    )["items"]
    return items


@pytest.fixture
def quick_job(kube: Kube, operator: OperatorProcess, tmp_path: Path) -> None:
    """A synced job ``Quick`` (no parameters) in the test's namespace."""
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": "- name: Quick\n  command: 'true'\n"}, "a quick job")
    kube.apply(repository("jobs", upstream.file_url))
    wait_for_jobs(kube, {"Quick"})


async def test_twenty_concurrent_posts_with_one_key_create_one_execution_and_survive_a_restart(
    kube: Kube, quick_job: None, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {TOKENS['runner'][0]}", "Idempotency-Key": "deploy-42"}
    # Given the API, and twenty identical POSTs with one Idempotency-Key at once
    with run_api(kube.cluster, kube.namespace, tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=60) as client:
            answers = await asyncio.gather(
                *(client.post("/jobs/Quick", json={}) for _ in range(20))
            )
            # Then one created the execution (201) and the others got it (200)
            assert sorted(a.status_code for a in answers) == [200] * 19 + [201], [
                a.text for a in answers if a.status_code not in {200, 201}
            ]
            ids = {a.json()["id"] for a in answers}
            assert len(ids) == 1
            assert {a.headers["location"] for a in answers} == {answers[0].headers["location"]}
            # And the same key with another body is refused, naming the problem
            other = await client.post("/jobs/Quick", json={"x": "1"})
            assert other.status_code == 422, other.text
            assert other.json()["type"].endswith("/idempotency-key-reused")
    executions = executions_of(kube)
    assert [e["spec"]["executionId"] for e in executions] == list(ids)
    assert core.CLAIM_LABEL in executions[0]["metadata"]["labels"]
    # When the API restarts (a new process: nothing kept in memory) and the key returns
    with run_api(kube.cluster, kube.namespace, tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as client:
            again = await client.post("/jobs/Quick", json={})
    # Then it answers the same execution, and still only one exists
    assert again.status_code == 200, again.text
    assert again.json()["id"] in ids
    assert len(executions_of(kube)) == 1
