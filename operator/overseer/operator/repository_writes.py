"""The sync's writes: the planned jobs, and the commit's ``bin/`` bundle with its collection.

:mod:`overseer.operator.repositories` decides (through :mod:`overseer.core.sync` and
:mod:`overseer.core.bundle`); this module carries the decisions out against the API
server, a few writes at a time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from overseer import errors, git, kube_client
from overseer.core import bundle, repository_sync, sync, write_pacing
from overseer.crd import base
from overseer.crd import execution as execution_crd
from overseer.crd import job as job_crd
from overseer.crd import repository as repository_crd
from overseer.operator import write_gate

log = logging.getLogger(__name__)


async def carry_out(
    plan: sync.Plan,
    namespace: str,
    client: kube_client.KubeClient,
    inactive: frozenset[str],
    *,
    concurrency: int = write_pacing.DEFAULT_CONCURRENCY,
    retry: write_pacing.RetryPolicy = write_pacing.DEFAULT_RETRY,
    gate: write_gate.WriteGate | None = None,
) -> None:
    """Make every write of ``plan``, ``concurrency`` in flight at once.

    A few workers take the writes in order from one list (not a task per write: 10,000
    of them held their bodies and coroutines all at once); each body is encoded once,
    just before it is sent, and the answer is not decoded. A write refused for now (429,
    5xx, no answer) is sent again after a backoff (:func:`write_pacing.plan_retry`).
    Each worker holds a slot of ``gate`` (shared with other syncs and the scheduler's
    status writes) while it has writes to make.
    """
    gate = gate or write_gate.WriteGate(concurrency)
    writes: list[tuple[str, sync.Write | str]] = [
        *(("create", write) for write in plan.create),
        *(("update", write) for write in plan.update),
        *(("delete", name) for name in plan.delete),
    ]
    pending = iter(writes)

    async def send(verb: str, what: sync.Write | str) -> None:
        if isinstance(what, str):
            await client.delete(job_crd.KIND.kind, namespace, what)
            return
        # A job coming back into git after it was deactivated is created deactivated.
        creation = repository_sync.build_creation(what, inactive) if verb == "create" else None
        if creation is not None:
            creation["metadata"] = {**creation["metadata"], "namespace": namespace}
            await client.create(creation)
            return
        body = {**what.body, "metadata": {**what.body["metadata"], "namespace": namespace}}
        data = write_pacing.encode(body)
        await client.apply_encoded(job_crd.KIND.kind, namespace, what.name, data)

    async def worker() -> None:
        async with gate.slot(write_gate.SYNC):
            for verb, what in pending:  # one iterator shared: each write is taken once
                await _with_retries(functools.partial(send, verb, what), retry)

    # TaskGroup cancels the rest at the first failure, which then reports the sync.
    async with asyncio.TaskGroup() as group:
        for _ in range(write_pacing.plan_workers(len(writes), concurrency)):
            group.create_task(worker())


async def _with_retries(
    call: Callable[[], Awaitable[None]], retry: write_pacing.RetryPolicy
) -> None:
    failures = 0
    while True:
        try:
            await call()
            return
        except errors.NotLeaderError:
            raise
        except errors.KubeError as error:
            delay = write_pacing.plan_retry(error.status, failures, error.retry_after, retry)
            if delay is None:
                raise
            log.info("%s; again in %.1fs", error.message, delay)
            failures += 1
            await asyncio.sleep(delay)


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
