"""The only module that talks to the Kubernetes API (through lightkube).

Callers pass and get plain dicts; every lightkube or HTTP error is wrapped in
:class:`KubeError` with the reporting policy its status code implies, so no
caller ever handles a library type. Write calls are counted per verb and
resource (``writes``), which the benchmarks and the no-op-sync checks read.
"""

from __future__ import annotations

import base64
import collections
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx2
import lightkube
from lightkube import generic_resource
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Pod, Secret
from lightkube.types import CascadeType, PatchType

from overseer import errors
from overseer.crd import base

log = logging.getLogger(__name__)

# lightkube 1.x speaks through httpx2: its transport errors are httpx2's, not httpx's.
HTTPError = httpx2.HTTPError

FIELD_MANAGER = "overseer"

OverseerRepository = generic_resource.create_namespaced_resource(
    base.GROUP, base.VERSION, "OverseerRepository", "overseerrepositories"
)
OverseerJob = generic_resource.create_namespaced_resource(
    base.GROUP, base.VERSION, "OverseerJob", "overseerjobs"
)
OverseerExecution = generic_resource.create_namespaced_resource(
    base.GROUP, base.VERSION, "OverseerExecution", "overseerexecutions"
)
_RESOURCES: dict[str, Any] = {
    "OverseerRepository": OverseerRepository,
    "OverseerJob": OverseerJob,
    "OverseerExecution": OverseerExecution,
    "ConfigMap": ConfigMap,
    "Secret": Secret,
    "Job": Job,
    "Pod": Pod,
}


class KubeError(errors.OverseerError):
    """The API server refused or failed a call; temporary unless the status says otherwise."""

    policy: ClassVar[errors.Policy] = errors.Policy.WAITING
    reason: ClassVar[str] = "KubernetesAPIError"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidObjectError(KubeError):
    """The API server rejected an object as invalid (HTTP 422): the input must change."""

    policy: ClassVar[errors.Policy] = errors.Policy.STALLED
    reason: ClassVar[str] = "InvalidObject"


def _wrap(error: Exception, doing: str) -> KubeError:
    if isinstance(error, ApiError):
        status = error.status.code
        text = f"{doing}: {error.status.message or error.status.reason} (HTTP {status})"
        if status == 422:
            return InvalidObjectError(text, status)
        return KubeError(text, status)
    return KubeError(f"{doing}: {error}")


class Kube:
    """An API client for one process: build it once at start-up and pass it down."""

    def __init__(self, client: lightkube.AsyncClient) -> None:
        self._client = client
        self.writes: collections.Counter[str] = collections.Counter()

    @classmethod
    def connect(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster credentials, or KUBECONFIG / ``kubeconfig`` when given."""
        config = KubeConfig.from_file(kubeconfig).get() if kubeconfig else None
        return cls(lightkube.AsyncClient(config=config, field_manager=FIELD_MANAGER))

    async def close(self) -> None:
        await self._client.close()

    def _count(self, verb: str, kind: str) -> None:
        self.writes[f"{verb} {kind}"] += 1

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        """The decoded data of a Secret (never logged)."""
        try:
            secret = await self._client.get(Secret, name, namespace=namespace)
        except (ApiError, HTTPError) as error:
            if isinstance(error, ApiError) and error.status.code == 404:
                raise MissingSecretError(
                    f"Secret {namespace}/{name} does not exist; create it or fix secretRef"
                ) from None
            raise _wrap(error, f"reading Secret {namespace}/{name}") from None
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        data.update({k: v.encode() for k, v in (secret.stringData or {}).items()})
        return data

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
        try:
            obj = await self._client.get(_RESOURCES[kind], name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise _wrap(error, f"reading {kind} {namespace}/{name}") from None
        except HTTPError as error:
            raise _wrap(error, f"reading {kind} {namespace}/{name}") from None
        return _as_dict(obj)

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
    ) -> None:
        """Merge-patch the status subresource."""
        self._count("patch-status", kind)
        try:
            await self._client.patch(
                _RESOURCES[kind].Status,
                name,
                {"status": dict(status)},
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
        except (ApiError, HTTPError) as error:
            raise _wrap(error, f"updating the status of {kind} {namespace}/{name}") from None

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Objects of a kind in a namespace, optionally filtered by labels."""
        try:
            async for obj in self._client.list(
                _RESOURCES[kind], namespace=namespace, labels=dict(labels or {})
            ):
                yield _as_dict(obj)
        except (ApiError, HTTPError) as error:
            raise _wrap(error, f"listing {kind} in {namespace}") from None

    async def follow_log(self, namespace: str, pod: str, container: str) -> AsyncIterator[bytes]:
        """The container's log from its start, following it, as raw bytes chunks.

        Ends when the container has ended and its whole log was sent (or the API server
        closes the stream: the caller reads again). Not lightkube's ``log()``: it decodes
        the stream as text and splits it with ``str.splitlines``, which also splits on
        ``\\x1e``, the first byte of every supervisor frame. So this is a streamed GET
        through lightkube's own HTTP client (same server, credentials and TLS), never
        with ``timestamps``.
        """
        doing = f"following the log of pod {namespace}/{pod}"
        http: httpx2.AsyncClient = self._client._client._client  # lightkube's httpx client
        url = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        params = {"container": container, "follow": "true"}
        timeout = httpx2.Timeout(30.0, read=None)  # a quiet job writes nothing for hours
        try:
            async with http.stream("GET", url, params=params, timeout=timeout) as response:
                if response.is_error:
                    await response.aread()
                    message = _status_message(response)
                    raise KubeError(
                        f"{doing}: {message} (HTTP {response.status_code})", response.status_code
                    )
                async for chunk in response.aiter_bytes():
                    yield chunk
        except HTTPError as error:
            raise _wrap(error, doing) from None


class MissingSecretError(KubeError):
    """A Secret named by a spec does not exist: the user must create it."""

    policy: ClassVar[errors.Policy] = errors.Policy.STALLED
    reason: ClassVar[str] = "SecretNotFound"


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return dict(obj) if not hasattr(obj, "to_dict") else obj.to_dict()
    result: dict[str, Any] = obj.to_dict()
    return result


def _status_message(response: httpx2.Response) -> str:
    """The ``message`` of a Kubernetes Status body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text[:200]
