"""Helpers for API tests: resource bodies as the operator writes them, tokens, a watch feed.

Job bodies come from the sync's own builder (``core.repository_sync.build_job``), so
the API is tested on exactly what the operator stores.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from overseer import errors
from overseer.core import definitions as definitions_
from overseer.core import names, repository_sync
from overseer.crd import definition as defn
from overseer_api import auth

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


class WatchFeed:
    """A stand-in for ``Kube.watch`` and ``read_secret``: lists what it holds, then
    streams what tests push. Unknown calls fail loudly."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.queues: dict[tuple[str, str], asyncio.Queue[tuple[str, dict[str, Any]]]] = {}
        self.unreachable = False

    def add(self, kind: str, body: dict[str, Any]) -> None:
        key = (kind, body["metadata"]["namespace"])
        self.objects.setdefault(key, []).append(body)

    async def watch(self, kind: str, namespace: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        if self.unreachable:
            raise errors.KubeError("connection refused")
        queue = self.queues.setdefault((kind, namespace), asyncio.Queue())
        yield "LIST", {"items": list(self.objects.get((kind, namespace), [])), "metadata": {}}
        while True:
            yield await queue.get()

    async def push(self, kind: str, event: str, body: dict[str, Any]) -> None:
        await self.queues[(kind, body["metadata"]["namespace"])].put((event, body))
        await asyncio.sleep(0)

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        raise AssertionError(f"unexpected read of Secret {namespace}/{name}")

    async def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        raise AssertionError(f"unexpected create of {body['kind']}")
