"""The FastAPI application: :func:`create_app` is the only place routers are included.

Nothing is built at import time: the process entry point (``__main__``) reads the
settings, connects to Kubernetes, opens the archive, and passes them in; tests pass
their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from overseer import archive as archive_
from overseer_api import auth, cache, deps, errors, idempotency, kubernetes_auth, metrics, paths
from overseer_api import settings as settings_
from overseer_api.routers import (
    api_docs,
    console,
    deliveries,
    executions,
    health,
    hooks,
    jobs,
    output,
    repositories,
    sync,
)
from overseer_api.routers import metrics as metrics_router

TITLE = "Overseer"
VERSION = "0.1.0"

NAMESPACED: tuple[APIRouter, ...] = (
    jobs.router,
    executions.router,
    output.router,
    deliveries.router,
    sync.router,
    repositories.router,
    hooks.router,
)
"""Routers served on the default namespace and under /namespaces/{namespace}."""


def _operation_id(route: APIRoute) -> str:
    """The route function's name (``list_jobs``): stable, and what clients generate from."""
    return route.name


def _namespaced_operation_id(route: APIRoute) -> str:
    """``list_jobs`` -> ``list_jobs_in_namespace``: each path keeps its own stable id."""
    return f"{route.name}_in_namespace"


def build_authenticator(settings: settings_.Settings, kube: deps.KubeApi) -> auth.Authenticator:
    """The authenticator of ``settings.auth``: hashed tokens, or Kubernetes' own identities."""
    if settings.auth == "kubernetes":
        return kubernetes_auth.KubernetesAuthenticator(
            kube, ttl=settings.auth_cache_ttl, size=settings.auth_cache_size
        )
    return auth.build_authenticator(settings, kube)


def _build_state(
    settings: settings_.Settings,
    kube: deps.KubeApi,
    archive: archive_.Archive,
    authenticator: auth.Authenticator | None,
) -> deps.State:
    """What the routes share: the caches fed by ``kube``, auth, idempotency claims, metrics."""
    store = cache.Cache(kube, settings.served_namespaces)
    return deps.State(
        settings=settings,
        kube=kube,
        archive=archive,
        cache=store,
        authenticator=authenticator or build_authenticator(settings, kube),
        idempotency=idempotency.Idempotency(
            kube,
            ttl=timedelta(seconds=settings.idempotency_ttl),
            wait=settings.idempotency_wait,
        ),
        metrics=metrics.Metrics(store),
    )


def create_app(
    settings: settings_.Settings,
    kube: deps.KubeApi,
    archive: archive_.Archive,
    *,
    authenticator: auth.Authenticator | None = None,
) -> FastAPI:
    """The API, serving ``settings``'s namespaces from caches fed by ``kube``."""
    state = _build_state(settings, kube, archive, authenticator)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.cache.start()
        collector = asyncio.create_task(
            state.idempotency.collect_forever(settings.served_namespaces)
        )
        try:
            yield
        finally:
            collector.cancel()
            await state.cache.stop()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description="Jobs from git, executed on Kubernetes: the original's REST API.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # routers/api_docs.py: the same page without a CDN
        redoc_url=None,
        generate_unique_id_function=_operation_id,
    )
    app.state.overseer = state
    errors.install(app)
    # The last added runs first: slashes are kept escaped before the metrics see the
    # scope the router fills in (its route template).
    app.add_middleware(metrics.RequestMetrics, metrics=state.metrics)
    app.add_middleware(paths.KeepEncodedSlashes)
    _include_routers(app)
    return app


def _include_routers(app: FastAPI) -> None:
    """Every router but health, metrics, the console and ``/docs`` on the default
    namespace, then under ``/namespaces/{namespace}``; those four once (the console
    reaches every namespace through the API's own paths).

    A request is matched against the routes in this order, so the routes clients call
    most come first: a probe every few seconds can afford the longer walk.
    """
    for router in NAMESPACED:
        app.include_router(router)
    for router in NAMESPACED:
        app.include_router(
            router,
            prefix="/namespaces/{namespace}",
            dependencies=[Depends(deps.path_namespace)],
            generate_unique_id_function=_namespaced_operation_id,
        )
    app.include_router(health.router)
    app.include_router(metrics_router.router)
    app.include_router(console.router)
    app.include_router(api_docs.router)
