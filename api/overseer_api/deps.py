"""The dependencies routes declare, as ``Annotated`` aliases.

Everything comes from the one :class:`State` that ``create_app`` puts on the app; no
dependency builds a client or reads a setting by itself.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Protocol

from fastapi import Depends, Path, Request

from overseer import archive as archive_
from overseer import errors
from overseer_api import (
    actions,
    auth,
    cache,
    idempotency,
    kubernetes_auth,
    metrics,
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


async def _settings(request: Request) -> settings.Settings:
    return current(request).settings


async def _kube(request: Request) -> KubeApi:
    return current(request).kube


async def _archive(request: Request) -> archive_.Archive:
    return current(request).archive


async def _cache(request: Request) -> cache.Cache:
    found = current(request).cache
    found.check_ready()
    return found


async def _idempotency(request: Request) -> idempotency.Idempotency:
    return current(request).idempotency


SettingsDep = Annotated[settings.Settings, Depends(_settings)]
IdempotencyDep = Annotated[idempotency.Idempotency, Depends(_idempotency)]
"""Idempotency-Key claims in the cluster (``overseer_api.idempotency``)."""
KubeDep = Annotated[KubeApi, Depends(_kube)]
ArchiveDep = Annotated[archive_.Archive, Depends(_archive)]
CacheDep = Annotated[cache.Cache, Depends(_cache)]
"""The caches, once ready (503 with Retry-After before)."""

CallerDep = Annotated[auth.Caller, Depends(auth.require(auth.Scope.READ))]
"""A caller allowed to read."""
ExecuteCallerDep = Annotated[auth.Caller, Depends(auth.require(auth.Scope.EXECUTE))]
"""A caller allowed to execute, repeat and signal."""
AdminCallerDep = Annotated[auth.Caller, Depends(auth.require(auth.Scope.ADMIN))]
"""A caller allowed to activate, deactivate and sync."""


async def path_namespace(
    namespace: Annotated[str, Path(description="A namespace the operator watches.")],
) -> str:
    """The ``{namespace}`` of ``/namespaces/{namespace}/...`` (declares it in OpenAPI)."""
    return namespace


async def _namespace(request: Request) -> str:
    found = current(request)
    namespace = str(request.path_params.get("namespace") or found.settings.namespace)
    if namespace not in found.cache.namespaces:
        served = ", ".join(found.cache.namespaces)
        msg = f"namespace {namespace!r} is not served by this API; it serves {served}"
        raise errors.NamespaceNotServedError(msg)
    return namespace


NamespaceDep = Annotated[str, Depends(_namespace)]
"""The request's namespace: ``{namespace}`` of the path, else the default one."""
