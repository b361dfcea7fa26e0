"""The only module that talks to the Kubernetes API (through lightkube).

Callers pass and get plain dicts; every lightkube or HTTP error is wrapped in
:class:`errors.KubeError` with the reporting policy its status code implies, so no
caller ever handles a library type. Write calls are counted per verb and
resource (``writes``), which the benchmarks and the no-op-sync checks read.
"""

# long because it is the one module that talks to the Kubernetes API: one short method per
# verb the operator and the API use; what needs no client is in kube_*.py already.

from __future__ import annotations

import base64
import collections
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import httpx2
import lightkube
from lightkube import generic_resource
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.resources.authentication_v1 import TokenReview
from lightkube.resources.authorization_v1 import SubjectAccessReview
from lightkube.resources.batch_v1 import Job
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Event, Pod, Secret, ServiceAccount
from lightkube.types import CascadeType, PatchType

from overseer import errors, kube_apply, kube_client, kube_exec, kube_http, kube_watch
from overseer.crd import base
from overseer.crd import execution as execution_crd
from overseer.crd import job as job_crd
from overseer.crd import repository as repository_crd

log = logging.getLogger(__name__)

# lightkube 1.x speaks through httpx2: its transport errors are httpx2's, not httpx's.
HTTPError = httpx2.HTTPError

FIELD_MANAGER = "overseer"
LIST_CHUNK = 500
"""Objects per page of :meth:`Kube.list`."""
API_FIELD_MANAGER = "overseer-api"
"""The API's field manager: it owns ``spec.active`` of jobs, the sync never applies it."""

OverseerRepository = generic_resource.create_namespaced_resource(
    base.GROUP, base.VERSION, repository_crd.KIND.kind, repository_crd.KIND.plural
)
OverseerJob = generic_resource.create_namespaced_resource(
    base.GROUP, base.VERSION, job_crd.KIND.kind, job_crd.KIND.plural
)
OverseerExecution = generic_resource.create_namespaced_resource(
    base.GROUP, base.VERSION, execution_crd.KIND.kind, execution_crd.KIND.plural
)
_RESOURCES: dict[str, Any] = {
    repository_crd.KIND.kind: OverseerRepository,
    job_crd.KIND.kind: OverseerJob,
    execution_crd.KIND.kind: OverseerExecution,
    "ConfigMap": ConfigMap,
    "Secret": Secret,
    "ServiceAccount": ServiceAccount,
    "Job": Job,
    "Pod": Pod,
    "Lease": Lease,
    "Event": Event,
}
# Cluster-scoped reviews: created to ask a question, never stored by the API server.
_REVIEWS: dict[str, Any] = {
    "TokenReview": TokenReview,
    "SubjectAccessReview": SubjectAccessReview,
}


def _wrap(error: Exception, doing: str) -> errors.KubeError:
    if isinstance(error, ApiError):
        status = error.status.code
        text = f"{doing}: {error.status.message or error.status.reason} (HTTP {status})"
        if status == 422:
            return errors.KubeInvalidObjectError(text, status)
        return errors.KubeError(text, status)
    return errors.KubeError(f"{doing}: {error}")


Timeouts = kube_http.Timeouts
"""How long the client waits on the API server (see :mod:`overseer.kube_http`)."""


ExecResult = kube_exec.ExecResult
"""How a command run with :meth:`Kube.exec_in_pod` ended (see :mod:`overseer.kube_exec`)."""


class Kube:
    """An API client for one process: build it once at start-up and pass it down."""

    def __init__(self, client: lightkube.AsyncClient, timeouts: Timeouts | None = None) -> None:
        self._client, self.timeouts = client, timeouts or Timeouts()
        self._bulk = kube_apply.BulkApply.beside(self._http, None, self.timeouts)
        # Called before every write; raises NotLeaderError to refuse it (leadership.py).
        self.fence: Callable[[], None] | None = None
        self.writes: collections.Counter[str] = collections.Counter()
        self.reads: collections.Counter[str] = collections.Counter()

    @classmethod
    def connect(
        cls,
        kubeconfig: str | None = None,
        field_manager: str = FIELD_MANAGER,
        *,
        timeouts: Timeouts | None = None,
    ) -> Kube:
        """In-cluster credentials, or KUBECONFIG / ``kubeconfig`` when given.

        ``field_manager`` names this process's writes (creates and patches); the API
        passes its own (``API_FIELD_MANAGER``), so what it owns (``spec.active``) is told
        apart from what the operator's sync applies.
        """
        config = (KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()).get()
        if config is None or config.user is None:
            raise errors.SettingsError("the kubeconfig names no current context with a user")
        timeouts = timeouts or Timeouts()
        # Our own transport, for TCP keepalive; it then carries lightkube's TLS settings.
        verify = client_adapter.verify_cluster(config.cluster, config.user, config.abs_file)
        client = lightkube.AsyncClient(
            config=config,
            field_manager=field_manager,
            timeout=httpx2.Timeout(timeouts.request),
            transport=kube_http.transport(verify),
        )
        kube = cls(client, timeouts)
        kube._bulk = kube_apply.BulkApply.beside(kube._http, verify, timeouts)  # same TLS
        return kube

    async def close(self) -> None:
        await self._bulk.close()
        await self._client.close()

    @property
    def _http(self) -> httpx2.AsyncClient:
        """lightkube's own httpx client, for the requests it cannot make (``kube_http``)."""
        http: httpx2.AsyncClient = self._client._client._client
        return http

    def _count(self, verb: str, kind: str) -> None:
        if self.fence is not None:
            self.fence()
        self.writes[f"{verb} {kind}"] += 1

    def _count_read(self, verb: str, kind: str) -> None:
        self.reads[f"{verb} {kind}"] += 1

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        """The decoded data of a Secret (never logged)."""
        return (await self.read_labelled_secret(namespace, name)).data

    async def read_labelled_secret(self, namespace: str, name: str) -> kube_client.SecretContent:
        """A Secret's labels and decoded data (never logged)."""
        self._count_read("get", "Secret")
        try:
            secret = await self._client.get(Secret, name, namespace=namespace)
        except (ApiError, HTTPError) as error:
            if isinstance(error, ApiError) and error.status.code == 404:
                raise errors.KubeSecretNotFoundError(
                    f"Secret {namespace}/{name} does not exist; create it or fix secretRef"
                ) from None
            raise _wrap(error, f"reading Secret {namespace}/{name}") from None
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        data.update({k: v.encode() for k, v in (secret.stringData or {}).items()})
        labels = dict((secret.metadata.labels if secret.metadata else None) or {})
        return kube_client.SecretContent(labels=labels, data=data)

    async def apply(self, body: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply of a whole object under Overseer's field manager."""
        kind = str(body["kind"])
        resource = _RESOURCES[kind]
        meta = body["metadata"]
        self._count("apply", kind)
        try:
            obj: Any = resource.from_dict(dict(body))
            result = await self._client.apply(obj, field_manager=FIELD_MANAGER, force=force)
        except (ApiError, HTTPError) as error:
            raise _wrap(error, f"applying {kind} {meta['namespace']}/{meta['name']}") from None
        return _as_dict(result)

    async def apply_encoded(
        self, kind: str, namespace: str, name: str, data: bytes, *, force: bool = True
    ) -> None:
        """:meth:`apply` of a body already encoded (JSON), over aiohttp (:mod:`kube_apply`):
        no resource model built, and the answer not decoded (the sync's many writes)."""
        self._count("apply", kind)
        path, doing = self._path(kind, namespace, name), f"applying {kind} {namespace}/{name}"
        await self._bulk.apply(path, data, field_manager=FIELD_MANAGER, force=force, doing=doing)

    def _path(self, kind: str, namespace: str, name: str) -> str:
        """The URL path of one namespaced object."""
        api = _RESOURCES[kind]._api_info
        group, version = api.resource.group, api.resource.version
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        return f"{prefix}/namespaces/{namespace}/{api.plural}/{name}"

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create an object; None when it exists already (creation is idempotent)."""
        kind = str(body["kind"])
        meta = body["metadata"]
        self._count("create", kind)
        try:
            obj = _RESOURCES[kind].from_dict(dict(body))
            return _as_dict(await self._client.create(obj))
        except ApiError as error:
            if error.status.code == 409:
                return None
            raise _wrap(error, f"creating {kind} {meta['namespace']}/{meta['name']}") from None
        except HTTPError as error:
            raise _wrap(error, f"creating {kind} {meta['namespace']}/{meta['name']}") from None

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete an object; one already gone is fine."""
        self._count("delete", kind)
        try:
            await self._client.delete(_RESOURCES[kind], name, namespace=namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise _wrap(error, f"deleting {kind} {namespace}/{name}") from None
        except HTTPError as error:
            raise _wrap(error, f"deleting {kind} {namespace}/{name}") from None

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object; None when it does not exist."""
        self._count_read("get", kind)
        try:
            obj = await self._client.get(_RESOURCES[kind], name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise _wrap(error, f"reading {kind} {namespace}/{name}") from None
        except HTTPError as error:
            raise _wrap(error, f"reading {kind} {namespace}/{name}") from None
        return _as_dict(obj)

    async def replace(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Replace an object if its ``metadata.resourceVersion`` is still the current one.

        None when another writer changed (or deleted and recreated) it since: the
        caller reads it again. A compare-and-swap for objects used as locks.
        """
        kind = str(body["kind"])
        meta = body["metadata"]
        self._count("replace", kind)
        try:
            obj = _RESOURCES[kind].from_dict(dict(body))
            return _as_dict(await self._client.replace(obj))
        except ApiError as error:
            if error.status.code in {404, 409}:
                return None
            raise _wrap(error, f"replacing {kind} {meta['namespace']}/{meta['name']}") from None
        except HTTPError as error:
            raise _wrap(error, f"replacing {kind} {meta['namespace']}/{meta['name']}") from None

    async def delete_unchanged(
        self, kind: str, namespace: str, name: str, resource_version: str
    ) -> bool:
        """Delete an object only if nobody changed it since ``resource_version`` was read.

        False when it changed or is gone. lightkube's ``delete`` sends no preconditions,
        so this is a DELETE with a DeleteOptions body through its own HTTP client.
        """
        self._count("delete", kind)
        path = self._path(kind, namespace, name)
        doing = f"deleting {kind} {namespace}/{name}"
        return await kube_http.delete_unchanged(self._http, path, resource_version, doing)

    async def review(self, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Ask the API server a question (TokenReview, SubjectAccessReview); its ``status``.

        The spec may hold a caller's token: it is never put in an error message.
        """
        resource = _REVIEWS[kind]
        self._count("create", kind)
        try:
            obj = resource.from_dict(
                {"apiVersion": resource._api_info.resource.api_version, "kind": kind, "spec": spec}
            )
            result = _as_dict(await self._client.create(obj))
        except (ApiError, HTTPError) as error:
            raise _wrap(error, f"creating a {kind}") from None
        status: dict[str, Any] = result.get("status") or {}
        return status

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete a batch/v1 Job and, in the background, its pods; one already gone is fine.

        The API's default for Jobs is to orphan their pods, which would leave them running.
        """
        self._count("delete", "Job")
        try:
            await self._client.delete(
                Job, name, namespace=namespace, cascade=CascadeType.BACKGROUND
            )
        except ApiError as error:
            if error.status.code != 404:
                raise _wrap(error, f"deleting Job {namespace}/{name}") from None
        except HTTPError as error:
            raise _wrap(error, f"deleting Job {namespace}/{name}") from None

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource; the object as patched."""
        return await self._patch_status(kind, namespace, name, {"status": dict(status)})

    async def patch_status_unchanged(
        self, kind: str, namespace: str, name: str, version: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """:meth:`patch_status` if still at resourceVersion ``version``; None if changed since."""
        patch = {"metadata": {"resourceVersion": version}, "status": dict(status)}
        try:
            return await self._patch_status(kind, namespace, name, patch)
        except errors.KubeError as error:
            if error.status == 409:
                return None
            raise

    async def _patch_status(self, kind: str, ns: str, name: str, patch: Any) -> dict[str, Any]:
        self._count("patch-status", kind)
        try:
            result = await self._client.patch(
                _RESOURCES[kind].Status, name, patch, namespace=ns, patch_type=PatchType.MERGE
            )
        except (ApiError, HTTPError) as error:
            raise _wrap(error, f"updating the status of {kind} {ns}/{name}") from None
        return _as_dict(result)

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch (RFC 7386) the object, such as annotations that may not exist yet; the
        object as patched."""
        self._count("patch", kind)
        try:
            result = await self._client.patch(
                _RESOURCES[kind], name, dict(patch), namespace=namespace, patch_type=PatchType.MERGE
            )
        except (ApiError, HTTPError) as error:
            raise _wrap(error, f"patching {kind} {namespace}/{name}") from None
        return _as_dict(result)

    async def patch_json(
        self, kind: str, namespace: str, name: str, operations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Apply a JSON patch (RFC 6902): appends to a list without a race; the object after."""
        self._count("patch", kind)
        try:
            result = await self._client.patch(
                _RESOURCES[kind],
                name,
                [dict(op) for op in operations],
                namespace=namespace,
                patch_type=PatchType.JSON,
            )
        except (ApiError, HTTPError) as error:
            raise _wrap(error, f"patching {kind} {namespace}/{name}") from None
        return _as_dict(result)

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Objects of a kind in a namespace (every namespace for
        :data:`kube_client.ALL_NAMESPACES`), optionally filtered by labels; read a page of
        :data:`LIST_CHUNK` at a time, as they are consumed."""
        self._count_read("list", kind)
        try:
            async for obj in self._client.list(
                _RESOURCES[kind],
                namespace=namespace,
                labels=dict(labels or {}),
                chunk_size=LIST_CHUNK,
            ):
                yield _as_dict(obj)
        except (ApiError, HTTPError) as error:
            raise _wrap(error, f"listing {kind} in {namespace}") from None

    async def watch(
        self, kind: str, namespace: str | None, *, paged: bool = False
    ) -> AsyncIterator[kube_watch.WatchEvent]:
        """``("LIST", list body)`` (``paged``: page by page), then each change as
        ``(type, object)``, forever.

        One LIST then WATCH of ``kind`` in ``namespace`` (every namespace when None),
        resumed from the last resourceVersion and listed again when the server forgot it (see
        :mod:`overseer.kube_watch`). Raises :class:`errors.KubeError` when the server refuses
        or cannot be reached: call again (with backoff) to start over with a LIST.
        """
        resource = _RESOURCES[kind]
        info = resource._api_info.resource
        plural = resource._api_info.plural
        self._count_read("watch", kind)
        path = kube_watch.collection_path(info.group, info.version, plural, namespace)
        api_version = f"{info.group}/{info.version}" if info.group else info.version
        try:
            timeout = httpx2.Timeout(self.timeouts.request, read=self.timeouts.watch_read)
            async for event in kube_watch.follow(
                self._http, path, kind, api_version, timeout, paged=paged
            ):
                yield event
        except (HTTPError, ValueError) as error:
            raise _wrap(error, f"watching {kind} in {namespace or 'every namespace'}") from None

    async def follow_log(self, namespace: str, pod: str, container: str) -> AsyncIterator[bytes]:
        """The container's log from its start, following it, as raw bytes chunks.

        Ends when the container has ended and its whole log was sent (or the API server
        closes the stream: the caller reads again). Not lightkube's ``log()``: it decodes
        the stream as text and splits it with ``str.splitlines``, which also splits on
        ``\\x1e``, the first byte of every supervisor frame: see :mod:`overseer.kube_http`.
        """
        self._count_read("log", "Pod")
        timeout = httpx2.Timeout(self.timeouts.request, read=self.timeouts.log_read)
        async for chunk in kube_http.follow_log(self._http, namespace, pod, container, timeout):
            yield chunk

    async def exec_in_pod(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Sequence[str],
        *,
        within: float = 30.0,
    ) -> ExecResult:
        """Run ``command`` in a running container (``pods/exec``, see :mod:`overseer.kube_exec`).

        Needs ``create`` and ``get`` on ``pods/exec``. Raises :class:`errors.KubeError` when
        the command could not be run at all, or did not end ``within`` seconds.
        """
        self._count("exec", "Pod")
        config = self._client._client.config  # the SingleConfig lightkube resolved
        return await kube_exec.run(config, namespace, pod, container, command, within=within)


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return dict(obj) if not hasattr(obj, "to_dict") else obj.to_dict()
    result: dict[str, Any] = obj.to_dict()
    return result


_KUBE_IS_A_CLIENT: type[kube_client.KubeClient] = Kube  # mypy checks Kube against the protocol
