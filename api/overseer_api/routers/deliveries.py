"""``POST /jobs/{name}/{id}/deliveries/{delivery}``: send a webhook delivery again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from overseer_api import deps, execution_views, paths, replays
from overseer_api.routers import executions as executions_router
from overseer_api.routers import jobs as jobs_router
from overseer_api.schemas import executions as schemas
from overseer_api.schemas import problems

router = APIRouter(tags=["executions"], responses=jobs_router.router.responses)

DeliveryId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The delivery's id, as GET /jobs/{name}/{id} lists it in deliveries.",
    ),
]


@router.post(
    "/jobs/{name}/{id}/deliveries/{delivery}",
    status_code=202,
    responses={
        404: {"model": problems.Problem, "description": "No such job, execution or delivery."},
        409: {"model": problems.Problem, "description": "The status kept changing; retry."},
    },
)
async def replay_delivery(
    *,
    request: Request,
    access: deps.ExecuteDep,
    name: jobs_router.JobName,
    id: executions_router.ExecutionId,
    delivery: DeliveryId,
) -> schemas.DeliveryReplayed:
    """Send a webhook delivery again (given up, failed, gone, or even delivered): 202, the
    operator sends it at once under its first ``webhook-id``, with a fresh retry horizon."""
    display, eid = paths.segment(name), executions_router.execution_id(id)
    cache = access.cache
    job = cache.job(access.namespace, display)
    execution = cache.execution(access.namespace, job["metadata"]["name"], eid)
    patched, record = await replays.replay(
        access.state.kube, cache, execution, delivery, access.caller
    )
    return schemas.DeliveryReplayed(
        delivery=execution_views.delivery(record),
        url=execution_views.detail_url(request, patched, display),
    )
