"""Liveness and readiness, open to all (no token)."""

from __future__ import annotations

from fastapi import APIRouter

from overseer import errors
from overseer_api import deps
from overseer_api.schemas import health as schemas

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def health() -> schemas.Health:
    """The process serves requests."""
    return schemas.Health(status="ok")


@router.get(
    "/readyz",
    responses={503: {"description": "The caches do not hold a first full list yet."}},
)
async def ready(state: deps.StateDep) -> schemas.Health:
    """The caches hold a first full list of every kind in every namespace served."""
    if not state.cache.ready:
        msg = "the API is still reading every job and execution; retry"
        raise errors.NotReadyError(msg)
    return schemas.Health(status="ready")
