"""The dependencies routes declare, as ``Annotated`` aliases.

Everything comes from the one :class:`State` that ``create_app`` puts on the app; no
dependency builds a client or reads a setting by itself.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Protocol

from fastapi import Depends, Path, Request
from fastapi.security import HTTPBearer

from overseer import archive as archive_
from overseer import errors
from overseer_api import (
    actions,
    auth,
    cache,
    idempotency,
    kubernetes_auth,
    metrics,
    replays,
    settings,
    sync_requests,
)


class KubeApi(
    cache.WatchSource,
    auth.SecretReader,
    actions.Writer,
    kubernetes_auth.Reviewer,
    idempotency.ClaimStore,
    sync_requests.Patcher,
    replays.StatusWriter,
    Protocol,
):
    """What the API uses of :class:`overseer.kube.Kube`."""


@dataclasses.dataclass(frozen=True)
class State:
    """What every request may use; built once by ``create_app``."""

    settings: settings.Settings
    kube: KubeApi
    archive: archive_.Archive
    cache: cache.Cache
    authenticator: auth.Authenticator
    idempotency: idempotency.Idempotency
    metrics: metrics.Metrics
    ids: actions.Ids = dataclasses.field(default_factory=actions.Ids)


def current(request: Request) -> State:
    """The app's state (a plain function, for code that has the request)."""
    found: State = request.app.state.overseer
    return found


# Dependencies are coroutines: FastAPI runs a plain function in a thread pool, which
# costs more than the lookup itself on every request.
async def state(request: Request) -> State:
    return current(request)


StateDep = Annotated[State, Depends(state)]


@dataclasses.dataclass(frozen=True)
class Access:
    """What a route's one dependency hands it: who calls, in which namespace, the state."""

    caller: auth.Caller
    namespace: str
    state: State

    @property
    def cache(self) -> cache.Cache:
        return self.state.cache


class Guard(HTTPBearer):
    """The dependency of every route but the health ones, in one call per request: the
    bearer token checked for ``scope`` in the request's namespace (served, or 404), and
    the caches ready (else 503 with Retry-After).

    One dependency rather than a chain of small ones: FastAPI's dependency solving costs
    more per dependency than what most of them do (``docs/benchmarks.rst``). Being an
    ``HTTPBearer``, it still declares the bearer scheme in the OpenAPI document.
    """

    def __init__(self, scope: auth.Scope) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="HTTPBearer",
            description="A token (token mode) or a Kubernetes token.",
        )
        self.scope = scope

    async def __call__(self, request: Request) -> Access:  # type: ignore[override]
        found = current(request)
        token = auth.bearer_token(request)
        namespace = _served(found, request)
        caller = await auth.check(found.authenticator, token, self.scope, namespace)
        found.cache.check_ready()
        return Access(caller, namespace, found)


ReadDep = Annotated[Access, Depends(Guard(auth.Scope.READ))]
"""A caller allowed to read, in a served namespace, with the caches ready."""
ExecuteDep = Annotated[Access, Depends(Guard(auth.Scope.EXECUTE))]
"""A caller allowed to execute, repeat and signal."""
AdminDep = Annotated[Access, Depends(Guard(auth.Scope.ADMIN))]
"""A caller allowed to activate, deactivate and sync."""


async def path_namespace(
    namespace: Annotated[str, Path(description="A namespace the operator watches.")],
) -> str:
    """The ``{namespace}`` of ``/namespaces/{namespace}/...`` (declares it in OpenAPI)."""
    return namespace


def _served(found: State, request: Request) -> str:
    """The request's namespace: ``{namespace}`` of the path, else the default one."""
    namespace = str(request.path_params.get("namespace") or found.settings.namespace)
    if namespace not in found.cache.namespaces:
        served = ", ".join(found.cache.namespaces)
        msg = f"namespace {namespace!r} is not served by this API; it serves {served}"
        raise errors.NamespaceNotServedError(msg)
    return namespace


async def _namespace(request: Request) -> str:
    return _served(current(request), request)


NamespaceDep = Annotated[str, Depends(_namespace)]
"""The request's namespace, for the routes without a bearer token (push hooks)."""
