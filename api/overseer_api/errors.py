"""Every error the API answers, as RFC 9457 problem details, mapped in one place.

Code below the routers raises :mod:`overseer.errors` classes (never ``HTTPException``);
:func:`install` registers the handlers that turn them, FastAPI's validation errors and
Starlette's own (unknown route, wrong method) into ``application/problem+json`` with a
stable ``type`` (``https://overseer.dev/problems/<reason>``, the error's ``reason`` in
kebab case), a ``title``, a ``detail`` that says what to do, and ``errors`` (one per
field) for 422. A Kubernetes error is mapped from its HTTP status, the cluster
unreachable is 503 with ``Retry-After``, and anything unforeseen a 500 whose body holds
no stack trace (the trace goes to the log).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from overseer import errors
from overseer_api.schemas import problems

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://overseer.dev/problems/"

# Most specific first: the first class an error is an instance of decides its status.
_STATUSES: Sequence[tuple[type[BaseException], int]] = (
    (errors.AuthenticationError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.ParameterError, 422),
    (errors.SignalError, 400),
    (errors.InvalidDefinitionError, 409),  # the job's definition, not the request, is wrong
    (errors.PayloadTooLargeError, 413),
    (errors.InvalidRequestError, 400),
    (errors.IdempotencyKeyReusedError, 422),
    (errors.NotReadyError, 503),
)
_KUBE_STATUSES = {404: 404, 409: 409, 422: 422}


def problem_type(reason: str) -> str:
    """``JobNotFound`` -> ``https://overseer.dev/problems/job-not-found``."""
    return TYPE_BASE + re.sub(r"(?<!^)(?=[A-Z])", "-", reason).lower()


def _title(reason: str) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", reason).lower()
    return words[:1].upper() + words[1:]


def respond(
    status: int,
    reason: str,
    detail: str,
    *,
    field_errors: Sequence[problems.FieldError] = (),
    headers: dict[str, str] | None = None,
    title: str | None = None,
) -> JSONResponse:
    """A problem details response."""
    body = problems.Problem(
        type=problem_type(reason),
        title=title or _title(reason),
        status=status,
        detail=detail,
        errors=list(field_errors) or None,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _retry_after(request: Request) -> dict[str, str]:
    return {"Retry-After": str(request.app.state.overseer.settings.retry_after)}


def _status_of(error: errors.OverseerError) -> int:
    if isinstance(error, errors.KubeError):
        if error.status in _KUBE_STATUSES:
            return _KUBE_STATUSES[error.status]
        return 503  # unreachable, overloaded (429), failing (5xx), or refusing us (403)
    for cls, status in _STATUSES:
        if isinstance(error, cls):
            return status
    return 422 if error.stalled else 503


async def overseer_error(request: Request, error: Exception) -> JSONResponse:
    """Map one :class:`overseer.errors.OverseerError` (the one mapping of the API)."""
    assert isinstance(error, errors.OverseerError)
    status = _status_of(error)
    headers: dict[str, str] = {}
    field_errors: list[problems.FieldError] = []
    detail = error.message
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="overseer"'
    elif status == 503:
        headers.update(_retry_after(request))
        if isinstance(error, errors.KubeError):
            log.warning("Kubernetes call failed: %s", error.message)
            detail = f"the Kubernetes API did not answer as expected ({error.message}); retry"
    if isinstance(error, errors.ParameterError):
        field_errors = [
            problems.FieldError(field=p.parameter, message=p.message) for p in error.problems
        ]
        detail = f"fix these parameters and send again: {error}"
    return respond(status, error.reason, detail, field_errors=field_errors, headers=headers)


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """A request FastAPI could not validate: 400 for unreadable JSON, else 422 per field."""
    assert isinstance(error, RequestValidationError)
    details: list[dict[str, Any]] = list(error.errors())
    if any(d.get("type") == "json_invalid" for d in details):
        return respond(400, "MalformedJson", "the body is not valid JSON; send a JSON object")
    field_errors = [
        problems.FieldError(
            field=".".join(str(part) for part in d.get("loc", ())), message=str(d.get("msg"))
        )
        for d in details
    ]
    fields = ", ".join(f.field for f in field_errors)
    return respond(
        422,
        "InvalidRequest",
        f"fix these fields and send again: {fields}",
        field_errors=field_errors,
    )


async def http_error(request: Request, error: Exception) -> JSONResponse:
    """Starlette's own errors (no such route, method not allowed) as problems."""
    assert isinstance(error, StarletteHTTPException)
    reasons = {404: "RouteNotFound", 405: "MethodNotAllowed"}
    reason = reasons.get(error.status_code, "HttpError")
    detail = {
        404: "no route has this path; /docs lists them",
        405: "this route does not take this method; /docs lists the methods",
    }.get(error.status_code, str(error.detail))
    return respond(error.status_code, reason, detail, headers=dict(error.headers or {}))


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """A bug: logged with its trace, answered without one."""
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return respond(
        500,
        "InternalError",
        "the API failed unexpectedly; the error is in its log. Retry, or report it",
    )


def document(openapi: dict[str, Any]) -> dict[str, Any]:
    """Say in the OpenAPI document that every error is ``application/problem+json``.

    FastAPI documents a response model under ``application/json``, and its own 422 as
    ``HTTPValidationError``; errors are answered as problem details, so each 4xx and 5xx
    response is moved to that media type, with the Problem schema.
    """
    problem = {"$ref": "#/components/schemas/Problem"}
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for status, response in (operation.get("responses") or {}).items():
                content = response.get("content") or {}
                if str(status)[:1] in "45" and "application/json" in content:
                    content.pop("application/json")
                    content[MEDIA_TYPE] = {"schema": problem}
    schemas = openapi.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return openapi


def install(app: FastAPI) -> None:
    """Register the handlers on ``app`` (called by ``create_app`` only), and document them."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(errors.OverseerError, overseer_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
