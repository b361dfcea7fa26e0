"""``/jobs/{name}/{id}`` (read, repeat, signal) and ``/executions``."""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from overseer import errors
from overseer.core import names
from overseer_api import actions, creation, deps, execution_views, pagination, paths, views
from overseer_api.routers import jobs as jobs_router
from overseer_api.schemas import executions as schemas
from overseer_api.schemas import problems

router = APIRouter(tags=["executions"], responses=jobs_router.router.responses)


ExecutionId = Annotated[
    str,
    Path(
        max_length=64,
        description="Execution id: 1489895624.840211 (1489888092.0 and 1489888092 too).",
    ),
]
"""``{id}`` as sent: :func:`execution_id` gives its one form."""


def execution_id(id: str) -> str:
    """The canonical form of an execution id in a path; a 404 problem when it is none."""
    try:
        return names.execution_id(names.parse_execution_id(id))
    except ValueError:
        msg = f"{id!r} is not an execution id; ids look like 1489895624.840211"
        raise errors.ExecutionNotFoundError(msg) from None


@router.get("/jobs/{name}/{id}")
async def get_execution(
    *, request: Request, access: deps.ReadDep, name: jobs_router.JobName, id: ExecutionId
) -> schemas.ExecutionDetail:
    """One execution: phase, trigger, parameters (secret ones as ***), events, outcome,
    signal requests and their fate, webhook deliveries, output sizes and URLs."""
    name = paths.segment(name)
    job = access.cache.job(access.namespace, name)
    execution = access.cache.execution(access.namespace, job["metadata"]["name"], execution_id(id))
    return execution_views.detail(request, execution, name)


@router.post(
    "/jobs/{name}/{id}",
    status_code=201,
    responses={409: {"model": problems.Problem}, 422: {"model": problems.Problem}},
)
async def repeat_execution(
    *,
    request: Request,
    response: Response,
    access: deps.ExecuteDep,
    name: jobs_router.JobName,
    id: ExecutionId,
    revision: Annotated[
        Literal["latest"] | None,
        Query(description="latest: the job's current definition; else the same as before."),
    ] = None,
    idempotency_key: jobs_router.IdempotencyKeyHeader = None,
) -> schemas.Created:
    """Repeat an execution: same parameters, same frozen definition and commit (or the
    job's current definition with ``?revision=latest``)."""
    name, eid = paths.segment(name), execution_id(id)
    job = access.cache.job(access.namespace, name)
    old = access.cache.execution(access.namespace, job["metadata"]["name"], eid)
    launch = actions.Launch(
        parameters=old["spec"].get("parameters") or {},
        caller=access.caller,
        repeat_of=old,
        latest=revision == "latest",
    )
    payload = {"repeat": eid, "revision": revision}
    created, replayed = await creation.create(
        access.state, request, job, launch, payload=payload, key=idempotency_key
    )
    if replayed:
        response.status_code = 200
    return execution_views.created(request, response, created, name)


def _signal_text(request: Request, signal: str | None) -> str | None:
    """``?signal=HUP``, or the original's bare ``?HUP``; None (TERM) without either."""
    if signal is not None:
        return signal
    pairs = urllib.parse.parse_qsl(request.url.query, keep_blank_values=True)
    bare = [key for key, value in pairs if not value]
    return bare[0] if len(bare) == 1 and len(pairs) == 1 else None


@router.put(
    "/jobs/{name}/{id}",
    status_code=202,
    responses={400: {"model": problems.Problem}, 409: {"model": problems.Problem}},
)
async def signal_execution(
    *,
    request: Request,
    access: deps.ExecuteDep,
    name: jobs_router.JobName,
    id: ExecutionId,
    signal: Annotated[
        str | None,
        Query(
            max_length=32,
            description="HUP, SIGHUP, 1...; the bare form ?HUP too; TERM when none is given.",
        ),
    ] = None,
) -> schemas.SignalAccepted:
    """Send a signal to the running job's process group: 202, the operator delivers it."""
    name, eid = paths.segment(name), execution_id(id)
    cache = access.cache
    execution = cache.execution(
        access.namespace, cache.job(access.namespace, name)["metadata"]["name"], eid
    )
    text = _signal_text(request, signal)
    patched, index = await actions.request_signal(
        access.state.kube, cache, execution, text, access.caller
    )
    return schemas.SignalAccepted(
        id=eid,
        signal=patched["spec"]["signals"][index]["signal"],
        index=index,
        url=execution_views.detail_url(request, patched, name),
    )


@router.get("/executions")
async def list_executions(
    *,
    request: Request,
    access: deps.ReadDep,
    job: Annotated[str | None, Query(max_length=1024, description="A job's display name.")] = None,
    phase: Annotated[str | None, Query(max_length=32, description="Pending, Running...")] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
    continue_: Annotated[str | None, Query(alias="continue", max_length=4096)] = None,
) -> schemas.ExecutionPage:
    """Every execution, newest first, a page at a time; filters ``job`` and ``phase``."""
    after = pagination.decode(continue_)
    cache, namespace = access.cache, access.namespace
    if job is not None:
        resource = cache.job(namespace, job)["metadata"]["name"]
        bodies = list(cache.executions_of(namespace, resource).values())
    else:
        bodies = list(cache.all_executions(namespace))
    keyed = sorted(
        ((views.id_key(b["spec"]["executionId"]), b["metadata"]["name"], b) for b in bodies),
        key=lambda item: (item[0], item[1]),
        reverse=True,
    )
    if isinstance(after, list) and len(after) == 2:
        cursor = (views.id_key(after[0]), after[1])
        keyed = [item for item in keyed if (item[0], item[1]) < cursor]
    items: list[schemas.ExecutionSummary] = []
    last: tuple[str, str] | None = None
    more = False
    for _key, resource_name, body in keyed:
        if phase is not None and (body.get("status") or {}).get("phase") != phase:
            continue
        if len(items) == limit:
            more = True
            break
        display = cache.display_name(namespace, body["spec"]["job"])
        items.append(execution_views.summary(request, body, display))
        last = (body["spec"]["executionId"], resource_name)
    cursor_text = pagination.encode(list(last)) if more and last else None
    return schemas.ExecutionPage(items=items, continue_=cursor_text)
