"""The sync's writes: the planned jobs, and the commit's ``bin/`` bundle with its collection.

:mod:`overseer.operator.repositories` decides (through :mod:`overseer.core.sync` and
:mod:`overseer.core.bundle`); this module carries the decisions out against the API
server, a few writes at a time.
"""

from __future__ import annotations

import asyncio

from overseer import git, kube_client
from overseer.core import bundle, repository_sync, sync
from overseer.crd import base
from overseer.crd import execution as execution_crd
from overseer.crd import job as job_crd
from overseer.crd import repository as repository_crd

# Writes in flight at once: one at a time leaves the API server idle between
# round trips (10,000 jobs took 71 s); a few keep it busy without flooding
# its priority-and-fairness queues.
WRITE_CONCURRENCY = 8


async def carry_out(
    plan: sync.Plan, namespace: str, client: kube_client.KubeClient, inactive: frozenset[str]
) -> None:
    limit = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def apply(write: sync.Write, *, new: bool) -> None:
        # A job coming back into git after it was deactivated is created deactivated.
        creation = repository_sync.build_creation(write, inactive) if new else None
        body = dict(write.body if creation is None else creation)
        body["metadata"] = {**body["metadata"], "namespace": namespace}
        async with limit:
            if creation is None:
                await client.apply(body)
            else:
                await client.create(body)

    async def delete(name: str) -> None:
        async with limit:
            await client.delete(job_crd.KIND.kind, namespace, name)

    # TaskGroup cancels the rest at the first failure, which then reports the sync.
    async with asyncio.TaskGroup() as group:
        for write in plan.create:
            group.create_task(apply(write, new=True))
        for write in plan.update:
            group.create_task(apply(write, new=False))
        for name in plan.delete:
            group.create_task(delete(name))


async def publish_bundle(
    repository: tuple[str, str, str],
    revision: git.Revision,
    client: kube_client.KubeClient,
    keep: int,
) -> None:
    """Create the immutable bin/ ConfigMap of this commit; remove those no longer used.

    ``repository`` is the OverseerRepository's (namespace, name, uid): the owner of
    the bundle, and whose bundles are collected. ``keep`` bounds the ended executions'
    commits kept for a repeat.
    """
    namespace, name, uid = repository
    owner = {
        "apiVersion": base.API_VERSION,
        "kind": repository_crd.KIND.kind,
        "name": name,
        "uid": uid,
    }
    files = [(f.path, f.mode, f.data) for f in revision.bin_files]
    await client.create(bundle.build_bundle(name, namespace, revision.commit, files, [owner]))
    existing = {}
    async for configmap in client.list(
        "ConfigMap", namespace, {bundle.LABEL_MANAGED_BY: bundle.MANAGER}
    ):
        annotations = configmap["metadata"].get("annotations") or {}
        if annotations.get(bundle.ANNOTATION_REPOSITORY) == name:
            existing[configmap["metadata"]["name"]] = annotations.get(bundle.ANNOTATION_COMMIT, "")
    # An execution that has not ended still mounts (or is about to mount) the bin/ of
    # the commit it froze: keep those bundles, and the newest. One that ended may be
    # repeated while it exists: keep its commit's too, the most recent first, up to
    # the bound.
    in_use = {revision.commit}
    ran: list[tuple[str, str]] = []
    async for execution in client.list(execution_crd.KIND.kind, namespace):
        commit = (execution.get("spec") or {}).get("commit", "")
        if (execution.get("status") or {}).get("phase") not in execution_crd.TERMINAL_PHASES:
            in_use.add(commit)
        else:
            ran.append((execution["metadata"].get("creationTimestamp") or "", commit))
    recent = [commit for _, commit in sorted(ran, reverse=True)]
    for stale in bundle.plan_bundle_gc(existing, in_use, recent, keep):
        await client.delete("ConfigMap", namespace, stale)
