"""The operator's life: stand by, lead (kopf runs), stop leading (kopf stops), stand by again.

Everything that acts lives inside kopf's run: the handlers, and the helpers the start-up
handler builds (git sync daemons, the scheduler, webhook lanes, log followers). So this
process runs kopf only while it holds its Lease(s) (:mod:`overseer.operator.leadership`),
and stops it as soon as it may no longer act; every write is fenced meanwhile. What runs
in every state: the election, and ``/healthz`` and ``/metrics`` (:mod:`serving`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

import kopf

from overseer import errors, kube
from overseer.operator import leadership, metrics, runtime, serving
from overseer.operator.settings import Settings

log = logging.getLogger(__name__)

POD_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
EXIT_NOT_STOPPED = 70
"""Exit status when kopf did not stop before the Lease could be taken over."""


def lease_locks(settings: Settings) -> list[tuple[str, str]]:
    """The Leases this operator must hold: one per watched namespace, or one for the
    whole cluster in ``OVERSEER_LEASE_NAMESPACE`` (else the pod's namespace)."""
    if settings.namespaces:
        return [(namespace, settings.lease_name) for namespace in settings.namespaces]
    namespace = settings.lease_namespace
    if not namespace and POD_NAMESPACE.exists():
        namespace = POD_NAMESPACE.read_text().strip()
    if not namespace:
        msg = "watching the whole cluster outside a pod: set OVERSEER_LEASE_NAMESPACE"
        raise errors.SettingsError(msg)
    return [(namespace, settings.lease_name)]


async def run(settings: Settings) -> int:
    """Contend, lead and stand by until SIGTERM or SIGINT; the process's exit status."""
    locks = lease_locks(settings)
    # The election's own client, never fenced.
    client = kube.Kube.connect(settings.kubeconfig, timeouts=settings.kube_timeouts)
    elector = leadership.Elector(
        client, locks, leadership.new_identity(socket.gethostname()), settings.lease_timing
    )
    server = None
    if settings.metrics_port:
        server = await serving.start("0.0.0.0", settings.metrics_port)  # noqa: S104
    stop = asyncio.Event()
    metrics.LEADER.set(0)
    status: int | None = None
    try:
        while status is None and not stop.is_set():
            _on_signals(stop)
            if not await elector.acquire(stop):
                break
            status = await _lead(settings, elector, stop)
    finally:
        await elector.release()
        await client.close()
        if server is not None:
            await server.cleanup()
    return status or 0


async def _lead(settings: Settings, elector: leadership.Elector, stop: asyncio.Event) -> int | None:
    """Run kopf while this process leads; None to stand by again (deposed), else the
    exit status (stopped by a signal, or kopf failed)."""
    metrics.leading(True)
    # Created before kopf's run, which cancels every task created during it when it ends.
    renewing = asyncio.create_task(elector.renew(), name="renew leases")
    expiring = asyncio.create_task(elector.expired(), name="leadership ends")
    stopping = asyncio.create_task(stop.wait(), name="stop on signal")
    kopf_stop = asyncio.Event()
    acting = asyncio.create_task(_kopf(settings, elector, kopf_stop), name="kopf")
    await asyncio.wait({expiring, stopping, acting}, return_when=asyncio.FIRST_COMPLETED)
    deposed = expiring.done()
    kopf_stop.set()
    if deposed:
        metrics.leading(False)
        # Writes are fenced already; kopf must be gone before a standby may take over.
        grace = elector.timing.duration - elector.timing.renew_deadline
        done, _ = await asyncio.wait({acting}, timeout=grace)
        if not done:
            log.critical("kopf did not stop within %.0fs of losing the Lease: exiting", grace)
            os._exit(EXIT_NOT_STOPPED)
    else:
        await asyncio.wait({acting})  # still holding: kopf finishes what it does
        metrics.leading(False)
    for task in (renewing, expiring, stopping):
        task.cancel()
    await asyncio.gather(renewing, expiring, stopping, return_exceptions=True)
    if not acting.cancelled() and (error := acting.exception()) is not None:
        log.error("the operator failed", exc_info=error)
        return 1
    # kopf's run ends on its own only on SIGTERM or SIGINT (it handles them while it runs).
    return None if deposed and not stop.is_set() else 0


async def _kopf(settings: Settings, elector: leadership.Elector, stop: asyncio.Event) -> None:
    await kopf.operator(
        standalone=True,  # the election is ours (docs/decisions.rst), not kopf's peering
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        memo=kopf.Memo({runtime.SETTINGS_KEY: settings, runtime.FENCE_KEY: elector.fence}),
        stop_flag=stop,
    )


def _on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT stop this process (kopf takes them over while it runs)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
