"""The routes' way to create an execution: once per ``Idempotency-Key`` when one is sent.

:func:`create` runs :func:`overseer_api.actions.create_execution` through
:meth:`overseer_api.idempotency.Idempotency.create_execution`: without a key it simply
creates; with one, the same key and request return the execution made the first time
(``replayed``), across replicas and restarts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import Request

from overseer import errors
from overseer.core import idempotency as core
from overseer.crd import execution as execution_
from overseer_api import actions, deps

Body = dict[str, Any]


async def create(
    state: deps.State,
    request: Request,
    job: Body,
    launch: actions.Launch,
    *,
    payload: Any,
    key: str | None,
) -> tuple[Body, bool]:
    """The execution, and whether it was made by an earlier request with the same key."""
    namespace, job_name = job["metadata"]["namespace"], job["metadata"]["name"]
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    digest = core.request_digest(request.method, path, payload)
    made: list[Body] = []

    async def create_one(labels: dict[str, str]) -> str:
        body = await actions.create_execution(
            state.kube, state.cache, state.ids, job, dataclasses.replace(launch, labels=labels)
        )
        made.append(body)
        return str(body["metadata"]["name"])

    outcome = await state.idempotency.create_execution(
        namespace, launch.caller.name, key, digest, create_one
    )
    if made:
        return made[0], outcome.replayed
    for body in state.cache.executions_of(namespace, job_name).values():
        if body["metadata"]["name"] == outcome.result:
            return body, True
    found = await state.kube.get(execution_.KIND.kind, namespace, outcome.result)
    if found is None:
        msg = (
            f"the execution this Idempotency-Key made ({outcome.result}) is gone; "
            "send the request again with a new key"
        )
        raise errors.ExecutionNotFoundError(msg)
    return found, True
