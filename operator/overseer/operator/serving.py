"""The operator's own HTTP endpoint: ``/healthz`` and ``/metrics``, leader or not.

Served from the operator's event loop (aiohttp, which kopf brings), so ``/healthz``
answering proves that loop turns; it answers while the operator stands by too, when
kopf does not run (kopf's own liveness endpoint would then be down, and the kubelet
would restart every standby replica).
"""

from __future__ import annotations

import logging

from aiohttp import web

from overseer.operator import metrics

log = logging.getLogger(__name__)


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _metrics(_: web.Request) -> web.Response:
    body, content_type = metrics.page()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def start(host: str, port: int) -> web.AppRunner:
    """Serve on ``host:port`` until the returned runner is cleaned up."""
    app = web.Application()
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("serving /healthz and /metrics on %s:%d", host, port)
    return runner
