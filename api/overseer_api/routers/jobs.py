"""``/jobs`` and ``/jobs/{name}``: list and read jobs (from the cache), execute, (de)activate."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response

from overseer_api import actions, creation, deps, execution_views, pagination, paths, views
from overseer_api.schemas import executions as executions_schemas
from overseer_api.schemas import jobs as schemas
from overseer_api.schemas import problems

router = APIRouter(
    tags=["jobs"],
    responses={
        400: {"model": problems.Problem, "description": "Malformed JSON or query."},
        401: {"model": problems.Problem, "description": "No valid bearer token."},
        403: {"model": problems.Problem, "description": "The token lacks the scope."},
        404: {"model": problems.Problem, "description": "No such job or namespace."},
        503: {"model": problems.Problem, "description": "The cluster is unreachable."},
    },
)


JobName = Annotated[str, Path(description="The job's display name, URL-encoded.")]
"""``{name}`` as routed: :func:`overseer_api.paths.segment` gives the display name."""
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Send the same key again to get the same execution, not a new one.",
    ),
]


@router.get("/jobs")
async def list_jobs(
    *,
    request: Request,
    access: deps.ReadDep,
    active: Annotated[bool | None, Query(description="Only active (or inactive) jobs.")] = None,
    repository: Annotated[
        str | None, Query(max_length=253, description="Only the jobs of this repository.")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=1024, description="Only names containing this text.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=pagination.MAX_LIMIT, description="Jobs per page.")
    ] = pagination.DEFAULT_LIMIT,
    continue_: Annotated[
        str | None,
        Query(alias="continue", max_length=4096, description="The previous page's cursor."),
    ] = None,
) -> schemas.JobPage:
    """Every job, active and inactive, in display-name order, a page at a time."""
    after = pagination.decode(continue_)
    needle = q.casefold() if q else None
    items: list[schemas.JobSummary] = []
    more = False
    for body in access.cache.jobs_after(
        access.namespace, after if isinstance(after, str) else None
    ):
        spec = body.get("spec", {})
        if active is not None and bool(spec.get("active", True)) != active:
            continue
        if repository is not None and spec.get("source", {}).get("repository") != repository:
            continue
        if needle is not None and needle not in str(spec.get("displayName")).casefold():
            continue
        if len(items) == limit:
            more = True
            break
        items.append(views.job_summary(request, body))
    cursor = pagination.encode(items[-1].name) if more else None
    return schemas.JobPage(items=items, continue_=cursor)


@router.get(
    "/jobs/{name}",
    response_model=schemas.JobDetail,
    responses={304: {"description": "If-None-Match holds the current ETag: no body."}},
)
async def get_job(*, request: Request, access: deps.ReadDep, name: JobName) -> Response:
    """One job: its definition, parameters, source, activation and latest executions.
    With an ``ETag``: send it back in ``If-None-Match`` for a 304 while nothing changed."""
    job = access.cache.job(access.namespace, paths.segment(name))
    return views.answer(request, views.job_detail_json(request, job, access.cache))


Parameters = dict[str, str | int | float | bool]


def _text(value: str | int | float | bool) -> str:
    """A parameter as the job receives it: text as sent; true/false and numbers as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


@router.post(
    "/jobs/{name}",
    status_code=201,
    responses={
        409: {"model": problems.Problem, "description": "Inactive, or concurrency refuses."},
        422: {"model": problems.Problem, "description": "Bad parameters, each named."},
    },
)
async def execute_job(
    *,
    request: Request,
    response: Response,
    access: deps.ExecuteDep,
    name: JobName,
    parameters: Annotated[
        Parameters | None,
        Body(description="Parameter values by name (texts; numbers and booleans as JSON)."),
    ] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> executions_schemas.Created:
    """Execute the job with these parameters: 201 with the execution's URL in Location
    (200 and the same execution for a repeated ``Idempotency-Key``)."""
    name = paths.segment(name)
    job = access.cache.job(access.namespace, name)
    launch = actions.Launch(
        parameters={k: _text(v) for k, v in (parameters or {}).items()}, caller=access.caller
    )
    created, replayed = await creation.create(
        access.state, request, job, launch, payload=parameters or {}, key=idempotency_key
    )
    if replayed:
        response.status_code = 200
    return execution_views.created(request, response, created, name)


@router.delete("/jobs/{name}")
async def deactivate_job(
    *,
    request: Request,
    access: deps.AdminDep,
    name: JobName,
) -> schemas.JobDetail:
    """Deactivate the job: it refuses executions and its schedule stops; git syncs keep it so."""
    return await _set_active(request, access, name, False)


@router.put("/jobs/{name}")
async def activate_job(
    *,
    request: Request,
    access: deps.AdminDep,
    name: JobName,
) -> schemas.JobDetail:
    """Reactivate a deactivated job."""
    return await _set_active(request, access, name, True)


async def _set_active(
    request: Request, access: deps.Access, name: str, active: bool
) -> schemas.JobDetail:
    cache, namespace = access.cache, access.namespace
    job = cache.job(namespace, paths.segment(name))
    job = await actions.set_active(access.state.kube, cache, job, active, access.caller)
    executions = cache.executions_of(namespace, job["metadata"]["name"])
    return views.job_detail(request, job, executions, cache)
