"""``POST /sync``: ask the operator to sync repositories now (admin scope)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from overseer import errors
from overseer.core import idempotency as core
from overseer.crd import repository as repository_
from overseer_api import actions, auth, deps, sync_requests
from overseer_api.routers import jobs as jobs_router
from overseer_api.schemas import sync as schemas

router = APIRouter(tags=["sync"], responses=jobs_router.router.responses)


@router.post(
    "/sync",
    status_code=202,
    responses={200: {"description": "The same Idempotency-Key again: the first answer."}},
)
async def sync(
    *,
    request: Request,
    response: Response,
    access: deps.AdminDep,
    repository: Annotated[
        str | None, Query(max_length=253, description="Only this repository; all when absent.")
    ] = None,
    idempotency_key: jobs_router.IdempotencyKeyHeader = None,
) -> schemas.SyncRequested:
    """Sync every repository of the namespace (or ``?repository=``) now, not at its interval:
    202, the operator does it (the repositories' status says when it is done). A repeated
    ``Idempotency-Key`` answers 200 with the first request's answer and requests nothing."""
    state, namespace, caller = access.state, access.namespace, access.caller
    digest = core.request_digest(request.method, request.url.path, {"repository": repository})

    async def request_syncs() -> str:
        done = await _request_syncs(state, namespace, caller, repository)
        return done.model_dump_json(by_alias=True)

    outcome = await state.idempotency.run(
        namespace, caller.name, idempotency_key, digest, request_syncs
    )
    if outcome.replayed:
        response.status_code = 200
    return schemas.SyncRequested.model_validate_json(outcome.result)


async def _request_syncs(
    state: deps.State, namespace: str, caller: auth.Caller, repository: str | None
) -> schemas.SyncRequested:
    if repository is None:
        names = sorted(
            [r["metadata"]["name"] async for r in state.kube.list(repository_.KIND.kind, namespace)]
        )
    else:
        names = [repository]
    when = datetime.now(UTC)
    for name in names:
        try:
            await sync_requests.request_sync(state.kube, namespace, name, caller.name)
        except errors.KubeError as error:
            if error.status == 404:
                msg = f"no repository is named {name!r} in {namespace!r}"
                raise errors.NotFoundError(msg) from None
            raise
        body = {
            "apiVersion": "overseer.dev/v1alpha1",
            "kind": repository_.KIND.kind,
            "metadata": {"name": name, "namespace": namespace},
        }
        await actions.record(
            state.kube, body, "SyncRequested", f"requested a sync of {name}", caller
        )
    return schemas.SyncRequested(repositories=names, requested_at=when)
