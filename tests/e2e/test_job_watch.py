"""The operator's OverseerJob watch (``overseer.operator.job_watch``) against the real API
server, over the whole cluster (an operator with no ``OVERSEER_NAMESPACES``): the jobs
present are in its index once it is ready, and a job added then deleted is noticed both
times. The namespaced path runs in every e2e test that starts the operator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from overseer import kube as kube_
from overseer.core import definitions, repository_sync, sync
from overseer.operator import job_watch
from tests.support.cluster import Kube

pytestmark = pytest.mark.cluster


def job(namespace: str, name: str) -> dict[str, Any]:
    """An OverseerJob as a sync of repository ``jobs`` writes it (no owner: there is none)."""
    result = definitions.parse_repository({f"{name}.yml": f"- name: {name}\n  command: 'true'\n"})
    owner = repository_sync.Owner(namespace, "jobs", "00000000-0000-0000-0000-000000000000")
    [(resource, desired)] = repository_sync.build_desired_jobs(owner, "0" * 40, result).items()
    body = sync.build_apply_body(resource, desired)
    del body["metadata"]["ownerReferences"]  # the collector would delete it
    return body


async def test_the_cluster_wide_watch_lists_then_notices_a_job_added_and_deleted(
    kube: Kube, overseer_crds: None
) -> None:
    # Given a job, and the watch over every namespace
    first, second = job(kube.namespace, "first"), job(kube.namespace, "second")
    kube.apply(first)
    first_name, second_name = first["metadata"]["name"], second["metadata"]["name"]
    client = kube_.Kube.connect(str(kube.cluster.kubeconfig))
    noticed: list[tuple[str, bool]] = []
    seen = asyncio.Event()

    def notice(body: Mapping[str, Any], deleted: bool) -> None:
        metadata = body["metadata"]
        if metadata["namespace"] == kube.namespace:
            noticed.append((metadata["name"], deleted))
            seen.set()

    watch = job_watch.JobWatch(client, (), notice, retry_min=1, retry_max=1)
    watch.start()
    try:
        # When it is ready, Then the job is in its index
        await asyncio.wait_for(watch.ready.wait(), 60)
        assert [e.metadata["name"] for e in watch.index[(kube.namespace, "jobs")]] == [first_name]
        # When a job is added then deleted, Then both are noticed
        noticed.clear()
        await asyncio.to_thread(kube.apply, second)
        await asyncio.to_thread(kube.kubectl, "delete", "overseerjob", second_name)
        for _ in range(100):
            if (second_name, True) in noticed:
                break
            seen.clear()
            await asyncio.wait_for(seen.wait(), 30)
        assert (second_name, False) in noticed
        assert noticed[-1] == (second_name, True)
        names = sorted(e.metadata["name"] for e in watch.index[(kube.namespace, "jobs")])
        assert names == [first_name]
    finally:
        await watch.close()
        await client.close()
