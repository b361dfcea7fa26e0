"""The only client of the Kubernetes API (through lightkube): :class:`Kube`.

Callers pass and get plain dicts; every lightkube or HTTP error is wrapped in
:class:`errors.KubeError` with the reporting policy its status code implies, so no
caller ever handles a library type. This module holds the connection and the reads (each
counted in ``reads``, which the benchmarks read); the writes are in
:mod:`overseer.kube_writes`, what both share in :mod:`overseer.kube_resources`.
"""

from __future__ import annotations

import base64
import collections
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2
import lightkube
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from overseer import errors, kube_apply, kube_client, kube_exec, kube_http, kube_watch
from overseer import kube_resources as res
from overseer.kube_writes import KubeWrites

log = logging.getLogger(__name__)

LIST_CHUNK = 500
"""Objects per page of :meth:`Kube.list`."""

Timeouts = kube_http.Timeouts
"""How long the client waits on the API server (see :mod:`overseer.kube_http`)."""


ExecResult = kube_exec.ExecResult
"""How a command run with :meth:`Kube.exec_in_pod` ended (see :mod:`overseer.kube_exec`)."""


class Kube(KubeWrites):
    """An API client for one process: build it once at start-up and pass it down."""

    def __init__(self, client: lightkube.AsyncClient, timeouts: Timeouts | None = None) -> None:
        self._client, self.timeouts = client, timeouts or Timeouts()
        self._bulk = kube_apply.BulkApply.beside(self._http, None, self.timeouts)
        self.fence = None  # set by leadership.py while this process leads
        self.writes = collections.Counter()
        self.reads: collections.Counter[str] = collections.Counter()

    @classmethod
    def connect(
        cls,
        kubeconfig: str | None = None,
        field_manager: str = res.FIELD_MANAGER,
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
        except (ApiError, res.HTTPError) as error:
            if isinstance(error, ApiError) and error.status.code == 404:
                raise errors.KubeSecretNotFoundError(
                    f"Secret {namespace}/{name} does not exist; create it or fix secretRef"
                ) from None
            raise res.wrap(error, f"reading Secret {namespace}/{name}") from None
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        data.update({k: v.encode() for k, v in (secret.stringData or {}).items()})
        labels = dict((secret.metadata.labels if secret.metadata else None) or {})
        return kube_client.SecretContent(labels=labels, data=data)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object; None when it does not exist."""
        self._count_read("get", kind)
        try:
            obj = await self._client.get(res.RESOURCES[kind], name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise res.wrap(error, f"reading {kind} {namespace}/{name}") from None
        except res.HTTPError as error:
            raise res.wrap(error, f"reading {kind} {namespace}/{name}") from None
        return res.as_dict(obj)

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Objects of a kind in a namespace (every namespace for
        :data:`kube_client.ALL_NAMESPACES`), optionally filtered by labels; read a page of
        :data:`LIST_CHUNK` at a time, as they are consumed."""
        self._count_read("list", kind)
        try:
            async for obj in self._client.list(
                res.RESOURCES[kind],
                namespace=namespace,
                labels=dict(labels or {}),
                chunk_size=LIST_CHUNK,
            ):
                yield res.as_dict(obj)
        except (ApiError, res.HTTPError) as error:
            raise res.wrap(error, f"listing {kind} in {namespace}") from None

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
        resource = res.RESOURCES[kind]
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
        except (res.HTTPError, ValueError) as error:
            raise res.wrap(error, f"watching {kind} in {namespace or 'every namespace'}") from None

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


_KUBE_IS_A_CLIENT: type[kube_client.KubeClient] = Kube  # mypy checks Kube against the protocol
