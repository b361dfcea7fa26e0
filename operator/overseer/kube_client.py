"""The Kubernetes calls the operator makes, as a Protocol: what :class:`overseer.kube.Kube` does.

Every module that is handed a client takes a :class:`KubeClient`, so the one real client
(:mod:`overseer.kube`) and the tests' fake (``tests/support/fake_kube.py``) are both
checked against it by mypy. Objects go in and come out as plain dicts; failures are
:class:`overseer.errors.KubeError`.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from overseer.kube_exec import ExecResult
    from overseer.kube_watch import WatchEvent


ALL_NAMESPACES = "*"
"""The namespace that lists every namespace's objects (lightkube's ``ALL_NS``)."""


class SecretContent(NamedTuple):
    """A Secret as read: its labels and its decoded data (never logged)."""

    labels: dict[str, str]
    data: dict[str, bytes]


class KubeClient(Protocol):
    """The API calls of :class:`overseer.kube.Kube` that the operator and the API use."""

    writes: collections.Counter[str]
    """Write calls made, by ``"verb Kind"`` (read by the sync's no-op check)."""

    reads: collections.Counter[str]
    """Read calls made (get, list, watch, log), by ``"verb Kind"`` (read by the benchmarks)."""

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]: ...

    async def read_labelled_secret(self, namespace: str, name: str) -> SecretContent: ...

    async def apply(self, body: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]: ...

    async def apply_encoded(
        self, kind: str, namespace: str, name: str, data: bytes, *, force: bool = True
    ) -> None: ...

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None: ...

    async def delete(self, kind: str, namespace: str, name: str) -> None: ...

    async def replace(self, body: Mapping[str, Any]) -> dict[str, Any] | None: ...

    async def delete_unchanged(
        self, kind: str, namespace: str, name: str, resource_version: str
    ) -> bool: ...

    async def review(self, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]: ...

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def delete_job(self, namespace: str, name: str) -> None: ...

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None: ...

    async def patch_json(
        self, kind: str, namespace: str, name: str, operations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]: ...

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]: ...

    def follow_log(self, namespace: str, pod: str, container: str) -> AsyncIterator[bytes]: ...

    def watch(
        self, kind: str, namespace: str | None, *, paged: bool = False
    ) -> AsyncIterator[WatchEvent]: ...

    async def exec_in_pod(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Sequence[str],
        *,
        within: float = 30.0,
    ) -> ExecResult: ...
