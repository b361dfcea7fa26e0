"""Builders of the execution routes' answers from cached bodies (see ``views``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response

from overseer import errors
from overseer.core import delivery_records, execution_resource
from overseer.crd import execution as execution_
from overseer_api import urls, views
from overseer_api.schemas import executions as schemas

Body = Mapping[str, Any]


def _secret_names(definition: Body) -> set[str]:
    declared = definition.get("parameters") or {}
    return {n for n, p in declared.items() if isinstance(p, Mapping) and p.get("secret")}


def detail_url(request: Request, execution: Body, display: str) -> str:
    namespace = execution["metadata"]["namespace"]
    return urls.execution(request, namespace, display, execution["spec"]["executionId"])


def summary(request: Request, execution: Body, display: str) -> schemas.ExecutionSummary:
    spec, status = execution["spec"], execution.get("status") or {}
    annotations = execution["metadata"].get("annotations") or {}
    trigger = spec.get("trigger") or {}
    return schemas.ExecutionSummary(
        id=spec["executionId"],
        job=display,
        url=detail_url(request, execution, display),
        phase=status.get("phase"),
        trigger=schemas.Trigger(
            type=trigger.get("type", "manual"),
            by=annotations.get(execution_resource.CREATED_BY_ANNOTATION),
            repeat_of=trigger.get("repeatOf"),
        ),
        start_time=views.parse_time(status.get("startTime")),
        completion_time=views.parse_time(status.get("completionTime")),
        exit_code=status.get("exitCode"),
        signal=status.get("signal"),
        reason=status.get("reason"),
    )


def _signals(spec: Body, status: Body) -> list[schemas.SignalRequest]:
    fates = {d.get("index"): d for d in status.get("signalDeliveries") or ()}
    requests = []
    for index, request in enumerate(spec.get("signals") or ()):
        fate = fates.get(index) or {}
        requests.append(
            schemas.SignalRequest(
                signal=request["signal"],
                requested_at=request["requestedAt"],
                requested_by=request.get("requestedBy"),
                result=fate.get("result"),
                sent_signal=fate.get("sentSignal"),
                time=fate.get("time"),
                message=fate.get("message"),
            )
        )
    return requests


def detail(request: Request, execution: Body, display: str) -> schemas.ExecutionDetail:
    spec, status = execution["spec"], execution.get("status") or {}
    base = summary(request, execution, display)
    secret = _secret_names(spec.get("definition") or {})
    parameters = {
        n: errors.REDACTED if n in secret else v for n, v in (spec.get("parameters") or {}).items()
    }
    hidden = (spec.get("secretParameters") or {}).get("names") or ()
    parameters.update(dict.fromkeys(hidden, errors.REDACTED))
    archive = status.get("archive") or {}
    return schemas.ExecutionDetail(
        **base.model_dump(),
        parameters=parameters,
        commit=spec["commit"],
        definition=views.public_definition(spec.get("definition") or {}),
        events=[
            schemas.Event(status=e["status"], time=e["time"], data=e.get("data"))
            for e in status.get("events") or ()
        ],
        message=status.get("message"),
        duration=status.get("duration"),
        signals=_signals(spec, status),
        deliveries=[
            delivery(execution_.Delivery.model_validate(d)) for d in status.get("deliveries") or ()
        ],
        output=schemas.Output(
            stdout_url=f"{base.url}/stdout",
            stderr_url=f"{base.url}/stderr",
            state=archive.get("state"),
            stdout_bytes=(archive.get("stdout") or {}).get("size"),
            stderr_bytes=(archive.get("stderr") or {}).get("size"),
        ),
    )


def created(request: Request, response: Response, execution: Body, display: str) -> schemas.Created:
    """The answer to a creation: 201's body, with the execution's URL in ``Location``."""
    url = detail_url(request, execution, display)
    response.headers["Location"] = url
    return schemas.Created(
        id=execution["spec"]["executionId"],
        job=display,
        url=url,
        phase=(execution.get("status") or {}).get("phase"),
    )


def delivery(record: execution_.Delivery) -> schemas.Delivery:
    """One webhook delivery as the API shows it, with the id that replays it."""
    return schemas.Delivery(
        id=delivery_records.delivery_id(record),
        **record.model_dump(
            include={
                "event_id", "url", "status", "attempts", "last_error",
                "delivered_at", "next_attempt_at", "replays",
            }
        ),
    )  # fmt: skip
