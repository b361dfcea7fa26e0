"""The reactions' client: reads of executions, their Jobs and pods served from the watches.

kopf already watches OverseerExecutions, and Overseer's Jobs and pods (by the execution
label), and the operator's job watch (:mod:`overseer.operator.job_watch`) the
OverseerJobs; :class:`CachingKube` keeps the newest state of each in an
:class:`overseer.core.object_store.ObjectStore`, fed by them with every event
(:meth:`CachingKube.seen`) and by the answers to this process's own writes, so a write
then a read sees the write. A read of something not kept asks the API server (and keeps
the answer); everything else passes through to the client underneath.

Executions that have ended and whose output is archived are kept only while they are
among the newest 1,000 such (see :func:`lasting`): they are read again while their Job
and pod go away, seldom after, and an operator with 10,000 of them would hold them all.
OverseerJobs are kept trimmed to what the reactions read of them (:func:`trim`): there
may be 10,000 of them, with their definitions.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from overseer import errors, kube_client
from overseer.core import execution_job, object_store, settlement
from overseer.crd import execution as execution_
from overseer.crd import job as job_crd

if TYPE_CHECKING:
    from overseer.kube_exec import ExecResult
    from overseer.kube_watch import WatchEvent

EXECUTION = execution_.KIND.kind
JOB = job_crd.KIND.kind
KINDS = frozenset({EXECUTION, JOB, "Job", "Pod"})
RECENT = 1000
"""How many settled executions are kept (each a few KiB)."""


def lasting(kind: str, body: Mapping[str, Any]) -> bool:
    """Whether an object is kept for as long as it exists: all Jobs and pods (the
    operator watches only its own, collected after their execution ends), the
    OverseerJobs (trimmed), executions until settled."""
    return kind != EXECUTION or not settlement.ended_and_archived(body.get("status"))


def trim(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept of an object: of an OverseerJob, only what the reactions read (its
    ``spec.active``, ``spec.source.repository`` and ``status.lastExecution``/
    ``lastStatus``); of the others, all but ``metadata.managedFields``."""
    if kind != JOB:
        return object_store.trimmed(body)
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    kept_spec: dict[str, Any] = {
        "source": {"repository": (spec.get("source") or {}).get("repository")}
    }
    if "active" in spec:
        kept_spec["active"] = spec["active"]
    return {
        "metadata": {
            k: metadata[k] for k in ("namespace", "name", "uid", "resourceVersion") if k in metadata
        },
        "spec": kept_spec,
        "status": {k: status[k] for k in ("lastExecution", "lastStatus") if k in status},
    }


def new_store() -> object_store.ObjectStore:
    return object_store.ObjectStore(
        KINDS, execution_job.EXECUTION_LABEL, lasting=lasting, trim=trim, recent=RECENT
    )


class CachingKube:
    """A :class:`overseer.kube_client.KubeClient` that reads kept objects from memory."""

    def __init__(self, inner: kube_client.KubeClient, store: object_store.ObjectStore) -> None:
        self.inner = inner
        self.store = store
        self.writes: collections.Counter[str] = inner.writes  # the same counters
        self.reads: collections.Counter[str] = inner.reads

    def seen(self, kind: str, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A watch event's object (the watches' handlers call this before they react)."""
        self.store.seen(kind, body, deleted=deleted)

    # --- reads ----------------------------------------------------------------------------

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind in self.store.kinds and (kept := self.store.get(kind, namespace, name)):
            return kept
        body = await self.inner.get(kind, namespace, name)
        if body is not None:
            self.store.wrote(kind, body)
        return body

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        label = execution_job.EXECUTION_LABEL
        if kind == "Pod" and labels is not None and set(labels) == {label}:
            kept = self.store.pods(namespace, labels[label])
            if kept is not None:
                for pod in kept:
                    yield pod
                return
        async for body in self.inner.list(kind, namespace, labels):
            self.store.wrote(kind, body)
            yield body

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        return await self.inner.read_secret(namespace, name)

    async def read_labelled_secret(self, namespace: str, name: str) -> kube_client.SecretContent:
        return await self.inner.read_labelled_secret(namespace, name)

    def follow_log(self, namespace: str, pod: str, container: str) -> AsyncIterator[bytes]:
        return self.inner.follow_log(namespace, pod, container)

    def watch(
        self, kind: str, namespace: str | None, *, paged: bool = False
    ) -> AsyncIterator[WatchEvent]:
        return self.inner.watch(kind, namespace, paged=paged)

    async def refresh_execution(self, namespace: str, name: str) -> None:
        """Read an execution, its Job and its pods from the API server again, and keep
        what they are now: one deleted in a watch gap (kopf lists again after a gap, and
        an object deleted meanwhile never shows as DELETED) is forgotten, never to come
        back with an older version. The periodic resync calls it before each observation.
        """
        for kind, object_name in ((EXECUTION, name), ("Job", execution_job.job_name(name))):
            body = await self.inner.get(kind, namespace, object_name)
            if body is not None:
                self.store.wrote(kind, body)
            elif kept := self.store.get(kind, namespace, object_name):
                self.store.seen(kind, kept, deleted=True)
        labels = {execution_job.EXECUTION_LABEL: name}
        pods = [pod async for pod in self.inner.list("Pod", namespace, labels)]
        there = {str(pod["metadata"]["name"]) for pod in pods}
        for kept in self.store.pods(namespace, name) or []:
            if kept["metadata"]["name"] not in there:
                self.store.seen("Pod", kept, deleted=True)
        for pod in pods:
            self.store.wrote("Pod", pod)

    # --- writes: their answers are kept; one that finds the object gone forgets it -------

    def _kept(self, kind: str, body: Mapping[str, Any] | None) -> None:
        if body is not None:
            self.store.wrote(kind, body)

    def _gone(self, error: errors.KubeError, kind: str, namespace: str, name: str) -> None:
        if error.status == 404:
            self.store.forget(kind, namespace, name)

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        try:
            body = await self.inner.patch_status(kind, namespace, name, status)
        except errors.KubeError as error:
            self._gone(error, kind, namespace, name)
            raise
        self._kept(kind, body)
        return body

    async def patch_json(
        self, kind: str, namespace: str, name: str, operations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        try:
            body = await self.inner.patch_json(kind, namespace, name, operations)
        except errors.KubeError as error:
            self._gone(error, kind, namespace, name)
            raise
        self._kept(kind, body)
        return body

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        try:
            body = await self.inner.patch_merge(kind, namespace, name, patch)
        except errors.KubeError as error:
            self._gone(error, kind, namespace, name)
            raise
        self._kept(kind, body)
        return body

    async def apply(self, body: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]:
        applied = await self.inner.apply(body, force=force)
        self._kept(str(body["kind"]), applied)
        return applied

    async def apply_encoded(
        self, kind: str, namespace: str, name: str, data: bytes, *, force: bool = True
    ) -> None:
        # The answer is not read: what was kept is stale, the watch brings the new state.
        self.store.forget(kind, namespace, name)
        await self.inner.apply_encoded(kind, namespace, name, data, force=force)

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        created = await self.inner.create(body)
        self._kept(str(body["kind"]), created)
        return created

    async def replace(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        replaced = await self.inner.replace(body)
        if replaced is None:  # changed or gone meanwhile: read it again
            meta = body["metadata"]
            self.store.forget(str(body["kind"]), meta["namespace"], meta["name"])
        self._kept(str(body["kind"]), replaced)
        return replaced

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        self.store.forget(kind, namespace, name)
        await self.inner.delete(kind, namespace, name)

    async def delete_unchanged(
        self, kind: str, namespace: str, name: str, resource_version: str
    ) -> bool:
        self.store.forget(kind, namespace, name)
        return await self.inner.delete_unchanged(kind, namespace, name, resource_version)

    async def delete_job(self, namespace: str, name: str) -> None:
        self.store.forget("Job", namespace, name)
        await self.inner.delete_job(namespace, name)

    async def review(self, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        return await self.inner.review(kind, spec)

    async def exec_in_pod(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Sequence[str],
        *,
        within: float = 30.0,
    ) -> ExecResult:
        return await self.inner.exec_in_pod(namespace, pod, container, command, within=within)


_CACHING_KUBE_IS_A_CLIENT: type[kube_client.KubeClient] = CachingKube
