"""The writes of :class:`overseer.kube.Kube`: every verb that changes the cluster.

Each is counted per verb and kind in ``writes`` (the benchmarks and the no-op-sync checks
read it) and first passes the ``fence``, which raises :class:`errors.NotLeaderError` in an
operator that no longer leads (``overseer.operator.leadership``).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx2
import lightkube
from lightkube.core.exceptions import ApiError
from lightkube.resources.batch_v1 import Job
from lightkube.types import CascadeType, PatchType

from overseer import errors, kube_apply, kube_exec, kube_http
from overseer import kube_resources as res


class KubeWrites:
    """The write half of :class:`overseer.kube.Kube`, which builds the attributes below."""

    _client: lightkube.AsyncClient
    _bulk: kube_apply.BulkApply
    fence: Callable[[], None] | None
    """Called before every write; raises NotLeaderError to refuse it."""
    writes: collections.Counter[str]

    @property
    def _http(self) -> httpx2.AsyncClient:
        """lightkube's own httpx client, for the requests it cannot make (``kube_http``)."""
        http: httpx2.AsyncClient = self._client._client._client
        return http

    def _count(self, verb: str, kind: str) -> None:
        if self.fence is not None:
            self.fence()
        self.writes[f"{verb} {kind}"] += 1

    async def apply(self, body: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply of a whole object under Overseer's field manager."""
        kind = str(body["kind"])
        resource = res.RESOURCES[kind]
        meta = body["metadata"]
        self._count("apply", kind)
        try:
            obj: Any = resource.from_dict(dict(body))
            result = await self._client.apply(obj, field_manager=res.FIELD_MANAGER, force=force)
        except (ApiError, res.HTTPError) as error:
            raise res.wrap(error, f"applying {kind} {meta['namespace']}/{meta['name']}") from None
        return res.as_dict(result)

    async def apply_encoded(
        self, kind: str, namespace: str, name: str, data: bytes, *, force: bool = True
    ) -> None:
        """:meth:`apply` of a body already encoded (JSON), over aiohttp (:mod:`kube_apply`):
        no resource model built, and the answer not decoded (the sync's many writes)."""
        self._count("apply", kind)
        path, doing = res.object_path(kind, namespace, name), f"applying {kind} {namespace}/{name}"
        await self._bulk.apply(
            path, data, field_manager=res.FIELD_MANAGER, force=force, doing=doing
        )

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create an object; None when it exists already (creation is idempotent)."""
        kind = str(body["kind"])
        meta = body["metadata"]
        self._count("create", kind)
        try:
            obj = res.RESOURCES[kind].from_dict(dict(body))
            return res.as_dict(await self._client.create(obj))
        except ApiError as error:
            if error.status.code == 409:
                return None
            raise res.wrap(error, f"creating {kind} {meta['namespace']}/{meta['name']}") from None
        except res.HTTPError as error:
            raise res.wrap(error, f"creating {kind} {meta['namespace']}/{meta['name']}") from None

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete an object; one already gone is fine."""
        self._count("delete", kind)
        try:
            await self._client.delete(res.RESOURCES[kind], name, namespace=namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise res.wrap(error, f"deleting {kind} {namespace}/{name}") from None
        except res.HTTPError as error:
            raise res.wrap(error, f"deleting {kind} {namespace}/{name}") from None

    async def replace(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Replace an object if its ``metadata.resourceVersion`` is still the current one.

        None when another writer changed (or deleted and recreated) it since: the
        caller reads it again. A compare-and-swap for objects used as locks.
        """
        kind = str(body["kind"])
        meta = body["metadata"]
        self._count("replace", kind)
        try:
            obj = res.RESOURCES[kind].from_dict(dict(body))
            return res.as_dict(await self._client.replace(obj))
        except ApiError as error:
            if error.status.code in {404, 409}:
                return None
            raise res.wrap(error, f"replacing {kind} {meta['namespace']}/{meta['name']}") from None
        except res.HTTPError as error:
            raise res.wrap(error, f"replacing {kind} {meta['namespace']}/{meta['name']}") from None

    async def delete_unchanged(
        self, kind: str, namespace: str, name: str, resource_version: str
    ) -> bool:
        """Delete an object only if nobody changed it since ``resource_version`` was read.

        False when it changed or is gone. lightkube's ``delete`` sends no preconditions,
        so this is a DELETE with a DeleteOptions body through its own HTTP client.
        """
        self._count("delete", kind)
        path = res.object_path(kind, namespace, name)
        doing = f"deleting {kind} {namespace}/{name}"
        return await kube_http.delete_unchanged(self._http, path, resource_version, doing)

    async def review(self, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Ask the API server a question (TokenReview, SubjectAccessReview); its ``status``.

        The spec may hold a caller's token: it is never put in an error message.
        """
        resource = res.REVIEWS[kind]
        self._count("create", kind)
        try:
            obj = resource.from_dict(
                {"apiVersion": resource._api_info.resource.api_version, "kind": kind, "spec": spec}
            )
            result = res.as_dict(await self._client.create(obj))
        except (ApiError, res.HTTPError) as error:
            raise res.wrap(error, f"creating a {kind}") from None
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
                raise res.wrap(error, f"deleting Job {namespace}/{name}") from None
        except res.HTTPError as error:
            raise res.wrap(error, f"deleting Job {namespace}/{name}") from None

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
                res.RESOURCES[kind].Status, name, patch, namespace=ns, patch_type=PatchType.MERGE
            )
        except (ApiError, res.HTTPError) as error:
            raise res.wrap(error, f"updating the status of {kind} {ns}/{name}") from None
        return res.as_dict(result)

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch (RFC 7386) the object, such as annotations that may not exist yet; the
        object as patched."""
        self._count("patch", kind)
        try:
            result = await self._client.patch(
                res.RESOURCES[kind],
                name,
                dict(patch),
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
        except (ApiError, res.HTTPError) as error:
            raise res.wrap(error, f"patching {kind} {namespace}/{name}") from None
        return res.as_dict(result)

    async def patch_json(
        self, kind: str, namespace: str, name: str, operations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Apply a JSON patch (RFC 6902): appends to a list without a race; the object after."""
        self._count("patch", kind)
        try:
            result = await self._client.patch(
                res.RESOURCES[kind],
                name,
                [dict(op) for op in operations],
                namespace=namespace,
                patch_type=PatchType.JSON,
            )
        except (ApiError, res.HTTPError) as error:
            raise res.wrap(error, f"patching {kind} {namespace}/{name}") from None
        return res.as_dict(result)

    async def exec_in_pod(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Sequence[str],
        *,
        within: float = 30.0,
    ) -> kube_exec.ExecResult:
        """Run ``command`` in a running container (``pods/exec``, see :mod:`overseer.kube_exec`).

        Needs ``create`` and ``get`` on ``pods/exec``. Raises :class:`errors.KubeError` when
        the command could not be run at all, or did not end ``within`` seconds.
        """
        self._count("exec", "Pod")
        config = self._client._client.config  # the SingleConfig lightkube resolved
        return await kube_exec.run(config, namespace, pod, container, command, within=within)
