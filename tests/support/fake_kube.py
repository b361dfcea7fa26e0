"""The one fake Kubernetes client of the unit and component tests.

:class:`FakeKube` implements :class:`overseer.kube_client.KubeClient`, the protocol the
real :class:`overseer.kube.Kube` satisfies too, and mypy checks both against it (``make
lint`` type-checks this module and the tests that use it). Every call raises
:class:`UnplannedCallError` unless the test planned it: a test subclasses ``FakeKube``
and overrides exactly the calls it expects, so a new API call in the code under test
fails the test instead of passing through a permissive stub.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NoReturn

from overseer import kube, kube_client, kube_watch


class UnplannedCallError(AssertionError):
    """The code under test made an API call the test did not plan for."""


def unplanned(method: str, *args: object) -> NoReturn:
    shown = ", ".join(repr(a) for a in args)
    raise UnplannedCallError(f"unplanned Kubernetes call: {method}({shown})")


class FakeKube:
    """Raises on every call; subclasses override the calls a test plans."""

    def __init__(self) -> None:
        self.writes: collections.Counter[str] = collections.Counter()
        self.reads: collections.Counter[str] = collections.Counter()

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        unplanned("read_secret", namespace, name)

    async def read_labelled_secret(self, namespace: str, name: str) -> kube_client.SecretContent:
        unplanned("read_labelled_secret", namespace, name)

    async def apply(self, body: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]:
        unplanned("apply", body)

    async def apply_encoded(
        self, kind: str, namespace: str, name: str, data: bytes, *, force: bool = True
    ) -> None:
        unplanned("apply_encoded", kind, namespace, name)

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        unplanned("create", body)

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        unplanned("delete", kind, namespace, name)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        unplanned("get", kind, namespace, name)

    async def replace(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        unplanned("replace", body)

    async def delete_unchanged(
        self, kind: str, namespace: str, name: str, resource_version: str
    ) -> bool:
        unplanned("delete_unchanged", kind, namespace, name, resource_version)

    async def review(self, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        unplanned("review", kind)  # never the spec: it may hold a caller's token

    async def delete_job(self, namespace: str, name: str) -> None:
        unplanned("delete_job", namespace, name)

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        unplanned("patch_status", kind, namespace, name, status)

    async def patch_status_unchanged(
        self,
        kind: str,
        namespace: str,
        name: str,
        version: str,
        status: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        unplanned("patch_status_unchanged", kind, namespace, name, version, status)

    async def patch_json(
        self, kind: str, namespace: str, name: str, operations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        unplanned("patch_json", kind, namespace, name, operations)

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        unplanned("patch_merge", kind, namespace, name, patch)

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        unplanned("list", kind, namespace, labels)
        yield {}  # pragma: no cover  (makes this an async generator, as Kube.list is)

    async def follow_log(self, namespace: str, pod: str, container: str) -> AsyncIterator[bytes]:
        unplanned("follow_log", namespace, pod, container)
        yield b""  # pragma: no cover

    async def watch(
        self, kind: str, namespace: str | None, *, paged: bool = False
    ) -> AsyncIterator[kube_watch.WatchEvent]:
        unplanned("watch", kind, namespace, paged)
        yield ("LIST", {})  # pragma: no cover

    async def exec_in_pod(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Sequence[str],
        *,
        within: float = 30.0,
    ) -> kube.ExecResult:
        unplanned("exec_in_pod", namespace, pod, container, command)


_FAKE_IS_A_CLIENT: type[kube_client.KubeClient] = FakeKube  # mypy checks the fake too
