"""``/repositories`` and ``/repositories/{name}``: the OverseerRepositories (from the cache)
and what their last sync did, so a client that asked for a sync sees it end."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from overseer_api import deps, repository_views
from overseer_api.routers import jobs as jobs_router
from overseer_api.schemas import problems
from overseer_api.schemas import repositories as schemas

router = APIRouter(
    tags=["repositories"],
    responses=jobs_router.router.responses
    | {404: {"model": problems.Problem, "description": "No such repository or namespace."}},
)

RepositoryName = Annotated[str, Path(max_length=253, description="The OverseerRepository.")]


@router.get("/repositories")
async def list_repositories(*, request: Request, access: deps.ReadDep) -> schemas.RepositoryList:
    """Every repository of the namespace, by name: its git source and its last sync."""
    bodies = access.cache.repositories(access.namespace)
    return schemas.RepositoryList(
        items=[repository_views.repository(request, body) for body in bodies]
    )


@router.get("/repositories/{name}")
async def get_repository(
    *, request: Request, access: deps.ReadDep, name: RepositoryName
) -> schemas.Repository:
    """One repository: its git source (never its credentials), the commit synced and when,
    its Ready condition, the errors its last sync found. ``POST /sync`` asks for a sync;
    this shows when it is done (``lastSyncTime``, ``commit``, ``conditions``)."""
    body = access.cache.repository(access.namespace, name)
    return repository_views.repository(request, body)
