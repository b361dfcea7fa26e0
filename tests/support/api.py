"""Helpers for API tests: resource bodies as the operator writes them, tokens, a watch feed.

Job bodies come from the sync's own builder (``core.repository_sync.build_job``), so
the API is tested on exactly what the operator stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from overseer import errors, kube_watch
from overseer.core import definitions as definitions_
from overseer.core import names, repository_sync
from overseer.crd import definition as defn
from overseer_api import auth
from tests.support import fake_kube

OWNER = repository_sync.Owner(namespace="default", name="repo", uid="uid-1")


def job_body(
    definition: Mapping[str, Any],
    *,
    namespace: str = "default",
    version: int = 1,
    active: bool | None = None,
    commit: str = "c0ffee",
) -> dict[str, Any]:
    """An OverseerJob as the sync writes it for ``definition`` (a job file's entry)."""
    model = defn.JobDefinition.model_validate(definition)
    parsed = definitions_.ParsedJob(
        definition=model,
        resource_name=names.job_resource_name(model.name),
        file="jobs/a.yml",
        index=0,
        line=1,
        template=None,
    )
    owner = repository_sync.Owner(namespace=namespace, name=OWNER.name, uid=OWNER.uid)
    body = repository_sync.build_job(owner, commit, parsed)
    body["metadata"]["resourceVersion"] = str(version)
    if active is not None:
        body["spec"]["active"] = active
    return body


def write_tokens(path: Path, tokens: Mapping[str, tuple[str, list[str]]]) -> Path:
    """A tokens file: name -> (token, scopes), stored hashed."""
    data = {
        name: {"sha256": auth.hash_token(token), "scopes": scopes}
        for name, (token, scopes) in tokens.items()
    }
    path.write_text(json.dumps(data))
    return path


@contextlib.asynccontextmanager
async def client_of(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of APP in this process (its lifespan run), bearing TOKEN, once ready."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api.test", headers=headers
        ) as client:
            for _ in range(100):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            yield client


class WatchFeed(fake_kube.FakeKube):
    """The one fake client, planned for the API: ``watch`` lists what it holds, then
    streams what tests push; the writes the API makes are kept and answered as the API
    server would. Any other call still raises."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.queues: dict[tuple[str, str], asyncio.Queue[kube_watch.WatchEvent]] = {}
        self.unreachable = False
        self.version = 1000
        self.stored: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.refuse_create: str | None = None

    def add(self, kind: str, body: dict[str, Any]) -> None:
        key = (kind, body["metadata"]["namespace"])
        self.objects.setdefault(key, []).append(body)

    async def watch(
        self, kind: str, namespace: str | None, *, paged: bool = False
    ) -> AsyncIterator[kube_watch.WatchEvent]:
        assert namespace is not None and not paged, "the API watches namespace by namespace"
        if self.unreachable:
            raise errors.KubeError("connection refused")
        queue = self.queues.setdefault((kind, namespace), asyncio.Queue())
        yield "LIST", {"items": list(self.objects.get((kind, namespace), [])), "metadata": {}}
        while True:
            yield await queue.get()

    async def push(self, kind: str, event: kube_watch.WatchType, body: dict[str, Any]) -> None:
        await self.queues[(kind, body["metadata"]["namespace"])].put((event, body))
        await asyncio.sleep(0)

    # --- writes: kept in ``created`` and ``patches``, answered like the API server ---

    def _stamp(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        body["metadata"].setdefault("uid", f"uid-{self.version}")
        return body

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        key = (body["kind"], body["metadata"]["namespace"], body["metadata"]["name"])
        if self.refuse_create:
            raise errors.KubeError(self.refuse_create)
        if key in self.stored:
            return None
        self.stored[key] = self._stamp(dict(body))
        self.created.append(self.stored[key])
        return copy.deepcopy(self.stored[key])

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        stored = [b for (k, ns, _), b in self.stored.items() if (k, ns) == (kind, namespace)]
        for body in [*self.objects.get((kind, namespace), []), *stored]:
            found = body["metadata"].get("labels") or {}
            if all(found.get(k) == v for k, v in (labels or {}).items()):
                yield copy.deepcopy(body)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.stored.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    async def replace(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        key = (body["kind"], body["metadata"]["namespace"], body["metadata"]["name"])
        current = self.stored.get(key)
        version = body["metadata"].get("resourceVersion")
        if current is None or current["metadata"]["resourceVersion"] != version:
            return None  # changed or gone since it was read: the caller reads it again
        self.stored[key] = self._stamp(dict(body))
        return copy.deepcopy(self.stored[key])

    async def delete_unchanged(
        self, kind: str, namespace: str, name: str, resource_version: str
    ) -> bool:
        current = self.stored.get((kind, namespace, name))
        if current is None or current["metadata"]["resourceVersion"] != resource_version:
            return False
        del self.stored[(kind, namespace, name)]
        return True

    def _current(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        if (kind, namespace, name) in self.stored:
            return self.stored[(kind, namespace, name)]
        for body in self.objects.get((kind, namespace), []):
            if body["metadata"]["name"] == name:
                return body
        raise errors.KubeError(f"{kind} {namespace}/{name} not found", 404)

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        body = _merge(copy.deepcopy(self._current(kind, namespace, name)), patch)
        self.patches.append((kind, name, dict(patch)))
        self.stored[(kind, namespace, name)] = self._stamp(body)
        return copy.deepcopy(self.stored[(kind, namespace, name)])

    async def patch_status_unchanged(
        self,
        kind: str,
        namespace: str,
        name: str,
        version: str,
        status: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        current = self._current(kind, namespace, name)
        if current["metadata"].get("resourceVersion") != version:
            return None  # changed since it was read: the caller reads it again
        body = copy.deepcopy(current)
        body["status"] = _merge(body.get("status") or {}, status)
        self.patches.append((kind, name, {"status": dict(status)}))
        self.stored[(kind, namespace, name)] = self._stamp(body)
        return copy.deepcopy(self.stored[(kind, namespace, name)])

    async def patch_json(
        self, kind: str, namespace: str, name: str, operations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        body = copy.deepcopy(self._current(kind, namespace, name))
        for op in operations:
            assert op["op"] == "add" and op["path"] == "/spec/signals/-", op
            body["spec"].setdefault("signals", []).append(op["value"])
        self.patches.append((kind, name, {"json": list(operations)}))
        self.stored[(kind, namespace, name)] = self._stamp(body)
        return copy.deepcopy(self.stored[(kind, namespace, name)])


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target
