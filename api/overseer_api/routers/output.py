"""``/jobs/{name}/{id}/stdout`` and ``/stderr``: an execution's output, byte for byte.

Raw bytes as ``application/octet-stream`` (``nosniff``: a browser never renders a job's
output as a page), streamed from the archive in bounded chunks. ``Range`` asks for one
byte range (206); ``?follow=true`` streams the output as the job writes it. Headers that
say how whole the answer is (see :mod:`overseer_api.output`):

``Overseer-Output-State``
   ``Complete``, ``Running``, ``Archiving`` or ``Incomplete``: the output's state when
   the answer started.
``Overseer-Output-Incomplete: true``
   The body may hold less than the job wrote (or will write): the execution runs, the
   archive did not get the end of the log within ``output_wait``, or lost it. Absent when
   the output is whole.
``Overseer-Output-Size``
   How many bytes the archive holds of the stream (not with ``follow``).
``Overseer-Output-Offset``
   With ``follow``: the byte the body starts at (``?offset=N`` or ``Range: bytes=N-``,
   for a follower resuming after a dropped connection; 0 otherwise).

``HEAD`` answers a GET's headers (the size in ``Content-Length``) without the body.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from overseer.core import byte_range
from overseer_api import deps, errors, output, paths
from overseer_api.routers import executions as executions_router
from overseer_api.routers import jobs as jobs_router
from overseer_api.schemas import problems
from overseer_library import protocol

OCTET_STREAM = "application/octet-stream"
STATE_HEADER = "Overseer-Output-State"
INCOMPLETE_HEADER = "Overseer-Output-Incomplete"
SIZE_HEADER = "Overseer-Output-Size"
OFFSET_HEADER = "Overseer-Output-Offset"
_OPEN_RANGE = re.compile(r"bytes=(\d{1,19})-")

_BYTES: dict[str, Any] = {OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}}
router = APIRouter(
    tags=["output"],
    responses={
        **jobs_router.router.responses,
        200: {"content": _BYTES, "description": "The whole output."},
        206: {"content": _BYTES, "description": "The byte range asked for (Content-Range)."},
        416: {"model": problems.Problem, "description": "No byte of the range exists."},
    },
)


FollowQuery = Annotated[
    bool,
    Query(
        description=(
            "Stream the output as the job writes it, and end once the execution has ended"
            " and its output is archived. Resume from a byte with offset (or Range: bytes=N-)."
        )
    ),
]
OffsetQuery = Annotated[
    int | None,
    Query(
        ge=0,
        description=(
            "With follow=true: the first byte to stream (the bytes a dropped follower already"
            " has); the same as Range: bytes=N-. Overseer-Output-Offset says where the body"
            " starts."
        ),
    ),
]


@router.get("/jobs/{name}/{id}/stdout", response_class=Response)
async def read_stdout(
    *,
    request: Request,
    access: deps.ReadDep,
    name: jobs_router.JobName,
    id: executions_router.ExecutionId,
    follow: FollowQuery = False,
    offset: OffsetQuery = None,
) -> Response:
    """What the execution wrote to stdout, byte for byte (``Range``, ``follow``)."""
    return await _read(request, _Where(access, name, id), "stdout", follow, offset)


@router.get("/jobs/{name}/{id}/stderr", response_class=Response)
async def read_stderr(
    *,
    request: Request,
    access: deps.ReadDep,
    name: jobs_router.JobName,
    id: executions_router.ExecutionId,
    follow: FollowQuery = False,
    offset: OffsetQuery = None,
) -> Response:
    """What the execution wrote to stderr, byte for byte (``Range``, ``follow``)."""
    return await _read(request, _Where(access, name, id), "stderr", follow, offset)


@router.head("/jobs/{name}/{id}/stdout", response_class=Response)
async def head_stdout(
    *,
    request: Request,
    access: deps.ReadDep,
    name: jobs_router.JobName,
    id: executions_router.ExecutionId,
) -> Response:
    """The headers a GET of stdout answers (its size in Content-Length, its state), no body."""
    return await _read(request, _Where(access, name, id), "stdout", False, None)


@router.head("/jobs/{name}/{id}/stderr", response_class=Response)
async def head_stderr(
    *,
    request: Request,
    access: deps.ReadDep,
    name: jobs_router.JobName,
    id: executions_router.ExecutionId,
) -> Response:
    """The headers a GET of stderr answers (its size in Content-Length, its state), no body."""
    return await _read(request, _Where(access, name, id), "stderr", False, None)


class _Where:
    """One execution in the cache (404 problems when the job or the execution is not)."""

    def __init__(self, access: deps.Access, name: str, id: str) -> None:
        self.cache, self.namespace = access.cache, access.namespace
        self.archive, self.settings = access.state.archive, access.state.settings
        self.execution_id = executions_router.execution_id(id)
        self.job = self.cache.job(self.namespace, paths.segment(name))["metadata"]["name"]
        self.resource = str(self.lookup()["metadata"]["name"])

    def lookup(self) -> output.Body:
        return self.cache.execution(self.namespace, self.job, self.execution_id)


def _headers(state: output.State | None) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-store",
    }
    if state is not None:
        headers[STATE_HEADER] = state
        if state != "Complete":
            headers[INCOMPLETE_HEADER] = "true"
    return headers


async def _read(
    request: Request,
    where: _Where,
    stream: protocol.Stream,
    follow: bool,
    offset: int | None,
) -> Response:
    if follow:
        start = offset if offset is not None else _resume_from(request.headers.get("range"))
        return _follow(where, stream, start)
    namespace, resource = where.namespace, where.resource
    archive = where.archive
    state = await output.wait_settled(
        archive, (namespace, resource), where.lookup, where.settings.output_wait
    )
    stat = await archive.stat(namespace, resource)
    size = stat.sizes.get(stream, 0) if stat is not None else 0
    plan = byte_range.parse_range(
        request.headers.get("range"), size, if_range="if-range" in request.headers
    )
    headers = _headers(state)
    headers[SIZE_HEADER] = str(size)
    if isinstance(plan, byte_range.Unsatisfiable):
        headers["Content-Range"] = plan.content_range
        detail = f"{plan.reason}; ask for bytes between 0 and {max(size - 1, 0)}"
        return errors.respond(416, "RangeNotSatisfiable", detail, headers=headers)
    start, stop, status = 0, size, 200
    if isinstance(plan, byte_range.Part):
        start, stop, status = plan.start, plan.stop, 206
        headers["Content-Range"] = plan.content_range
    headers["Content-Length"] = str(stop - start)
    if request.method == "HEAD":
        return Response(status_code=status, media_type=OCTET_STREAM, headers=headers)
    chunks = archive.read_range(namespace, resource, stream, start, stop)
    return StreamingResponse(chunks, status_code=status, media_type=OCTET_STREAM, headers=headers)


def _resume_from(range_header: str | None) -> int:
    """The N of ``Range: bytes=N-`` (a follower resuming); 0 for anything else."""
    match = _OPEN_RANGE.fullmatch((range_header or "").strip())
    return int(match.group(1)) if match else 0


def _follow(where: _Where, stream: protocol.Stream, start: int) -> Response:
    headers = _headers(output.derive_state(where.lookup()))
    headers["X-Accel-Buffering"] = "no"  # a proxy must pass each chunk on at once
    headers[OFFSET_HEADER] = str(start)
    chunks = output.follow(
        where.archive,
        (where.namespace, where.resource),
        stream,
        where.lookup,
        wait=where.settings.output_wait,
        start=start,
    )
    return StreamingResponse(chunks, media_type=OCTET_STREAM, headers=headers)
