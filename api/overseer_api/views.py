"""Builders of the API's answers from cached resource bodies (pure, given the request's URLs).

Each returns a :mod:`overseer_api.schemas` model; no route returns a body as read.
:func:`job_detail_json` keeps a job's detail as encoded JSON until the job or one of its
executions changes, and :func:`answer` serves such JSON with its entity tag (a
``304 Not Modified`` to a client that holds it already).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pydantic
from fastapi import Request, Response

from overseer import errors
from overseer.core import cmdspec
from overseer.crd import definition as defn
from overseer_api import cache, urls
from overseer_api.schemas import jobs as schemas

Body = Mapping[str, Any]

ACTIVE_BY_ANNOTATION = "overseer.dev/active-changed-by"
ACTIVE_AT_ANNOTATION = "overseer.dev/active-changed-at"
LATEST_EXECUTIONS = 10
"""How many executions GET /jobs/{name} lists."""


def id_key(execution_id: str) -> tuple[int, int]:
    """Sort key of an execution id: seconds then microseconds, as numbers."""
    seconds, _, micros = execution_id.partition(".")
    return int(seconds or 0), int(micros or 0)


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def job_summary(request: Request, job: Body) -> schemas.JobSummary:
    spec, status = job.get("spec", {}), job.get("status") or {}
    namespace = job["metadata"]["namespace"]
    definition = spec.get("definition", {})
    name = str(spec.get("displayName"))
    last = None
    if status.get("lastExecution"):
        last = schemas.ExecutionRef(
            id=status["lastExecution"],
            phase=status.get("lastStatus"),
            url=urls.execution(request, namespace, name, status["lastExecution"]),
        )
    schedule = definition.get("schedule")
    return schemas.JobSummary(
        name=name,
        url=urls.job(request, namespace, name),
        description=definition.get("description"),
        active=bool(spec.get("active", True)),
        source=schemas.Source.model_validate(spec.get("source", {})),
        schedule=schemas.Schedule.model_validate(schedule) if schedule else None,
        next_run=parse_time(status.get("nextScheduleTime")),
        last_execution=last,
    )


def _parameters(definition: Body) -> dict[str, schemas.Parameter]:
    model = defn.JobDefinition.model_validate(definition)
    template = None
    if model.cmdspec is not None:
        try:
            template = cmdspec.parse_cmdspec(model.cmdspec)
        except errors.CmdspecError:
            template = None  # executing it answers why; listing it still works
    accepted = cmdspec.effective_parameters(template, model.parameters)
    return {
        name: schemas.Parameter(
            description=p.description,
            required=p.required,
            default=None if p.secret else p.default,
            has_default=p.default is not None,
            allowed=p.allowed,
            secret=p.secret,
        )
        for name, p in sorted(accepted.items())
    }


def public_definition(definition: Body) -> dict[str, Any]:
    """The definition without the defaults of secret parameters."""
    public = copy.deepcopy(dict(definition))
    for parameter in (public.get("parameters") or {}).values():
        if isinstance(parameter, dict) and parameter.get("secret"):
            parameter.pop("default", None)
    return public


def _static(job: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, schemas.Parameter]]:
    """What a job's detail derives from its definition alone (once per version)."""
    definition = job.get("spec", {}).get("definition", {})
    return public_definition(definition), _parameters(definition)


def job_detail(
    request: Request, job: Body, executions: Mapping[str, Body], store: cache.Cache
) -> schemas.JobDetail:
    summary = job_summary(request, job)
    definition, parameters = store.derived(job, _static)
    annotations = job["metadata"].get("annotations") or {}
    changed = None
    by, at = (
        annotations.get(ACTIVE_BY_ANNOTATION),
        parse_time(annotations.get(ACTIVE_AT_ANNOTATION)),
    )
    if by and at:
        changed = schemas.ActiveChange(by=by, at=at)
    namespace = job["metadata"]["namespace"]
    latest = sorted(executions, key=id_key, reverse=True)[:LATEST_EXECUTIONS]
    refs = [_latest(request, namespace, summary.name, eid, executions[eid]) for eid in latest]
    return schemas.JobDetail(
        **dict(summary),
        definition=definition,
        parameters=parameters,
        active_changed=changed,
        executions=refs,
    )


@dataclasses.dataclass(frozen=True)
class Rendered:
    """An answer's JSON, encoded, and its entity tag (a digest of those bytes)."""

    body: bytes
    etag: str


def render(model: pydantic.BaseModel) -> Rendered:
    body = model.model_dump_json(by_alias=True).encode()
    return Rendered(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def job_detail_json(request: Request, job: Body, store: cache.Cache) -> Rendered:
    """:func:`job_detail` encoded, once per change of the job or of one of its executions
    (``Cache.stamp``) and per base URL, since its URLs are absolute."""
    meta = job["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    version = (store.stamp(namespace, name), urls.base(request))
    return store.memo(
        ("job-detail", namespace, name),
        version,
        lambda: render(job_detail(request, job, store.executions_of(namespace, name), store)),
    )


def _held(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return any(tag in ("*", etag) for tag in tags)


def answer(request: Request, rendered: Rendered) -> Response:
    """``rendered`` as a JSON answer with its ``ETag``; 304 and no body when the client's
    ``If-None-Match`` holds it already."""
    headers = {"ETag": rendered.etag}
    if _held(request.headers.get("if-none-match"), rendered.etag):
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type="application/json", headers=headers)


def _latest(
    request: Request, namespace: str, name: str, eid: str, execution: Body
) -> schemas.LatestExecution:
    status = execution.get("status") or {}
    return schemas.LatestExecution(
        id=eid,
        phase=status.get("phase"),
        url=urls.execution(request, namespace, name, eid),
        exit_code=status.get("exitCode"),
        signal=status.get("signal"),
        reason=status.get("reason"),
    )
