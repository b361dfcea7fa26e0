"""What the operator's handlers share, built once at start-up and reached through :func:`of`.

``__main__`` builds the settings and hands them to kopf as the operator's memo; the
start-up handler builds a :class:`Runtime` from them (it needs the running event loop)
and keeps it on the memo, where every handler finds it, typed, with :func:`of`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
from collections.abc import Mapping
from typing import Any

import kopf

from overseer import archive_factory, kube, kube_ranges
from overseer.core import url_policy
from overseer.operator import (
    admission,
    context,
    deliveries,
    events,
    execution_accounts,
    expiry,
    fencing,
    job_watch,
    memory,
    metrics,
    output,
    resync,
    scheduler,
    settling,
    signals,
    watch_cache,
    write_gate,
)
from overseer.operator.settings import Settings

log = logging.getLogger(__name__)

SETTINGS_KEY = "settings"
RUNTIME_KEY = "runtime"
FENCE_KEY = "fence"


@dataclasses.dataclass(frozen=True)
class Runtime:
    """The settings, the API client and the long-lived helpers of this process."""

    settings: Settings
    client: kube.Kube
    cached: watch_cache.CachingKube
    """The reactions' client: executions, their Jobs and pods read from the watches."""
    tracker: context.Tracker
    followers: output.Followers
    signals: signals.SignalSender
    deliveries: deliveries.Deliveries
    admission: admission.Admission
    scheduler: scheduler.Scheduler
    resync: resync.Resync
    writes: write_gate.WriteGate
    """Bounds the repository syncs' writes and the scheduler's status writes together."""
    jobs: job_watch.JobWatch
    """The OverseerJobs: the syncs' index; each change goes to the scheduler and ``cached``."""
    settler: settling.Settler
    """Labels settled executions, which then leave the execution watch."""
    expiry: expiry.ExpirySweep
    """Applies the execution TTL to the settled executions this process did not see end."""
    trimmer: memory.Trimmer = dataclasses.field(
        default_factory=lambda: memory.Trimmer(memory.find_trim())
    )
    """Returns what bursts (a restart's listing, a sync) freed to the system."""
    wakes: dict[tuple[str, str], asyncio.Event] = dataclasses.field(default_factory=dict)
    accounts: execution_accounts.ExecutionAccounts = dataclasses.field(
        default_factory=execution_accounts.ExecutionAccounts
    )
    """The namespaces whose executions' ServiceAccount this process made or found."""
    """Per repository (namespace, name): set to run its sync now (run_syncs waits on it)."""

    @classmethod
    def start(cls, settings: Settings, fence: fencing.Fence | None = None) -> Runtime:
        """Connect and build every helper; call it in the running event loop.

        ``fence`` (the leader election's) guards every write: to the API, to the archive,
        to webhook receivers (docs/decisions.rst, "Two operators").
        """
        fence = fence or _unfenced
        client = kube.Kube.connect(settings.kubeconfig, timeouts=settings.kube_timeouts)
        client.fence = fence
        cached = watch_cache.CachingKube(client, watch_cache.new_store())
        tracker = context.Tracker()
        followers = output.Followers(
            fencing.FencedArchive(archive_factory.build(settings), fence),
            retry_min=settings.retry_min,
            retry_max=settings.retry_max,
            limits=settings.event_limits,
        )
        metrics.count_output_held(followers.held)
        hooks = settings.webhooks
        log.info(
            "webhooks are signed with each namespace's Secret %s (key %s)%s",
            hooks.signing_secret,
            hooks.signing_key,
            ", else the operator's own secret" if hooks.fallback else "; none: not sent",
        )
        if hooks.fallback and not hooks.secret:
            log.warning(
                "OVERSEER_WEBHOOK_SIGNING_FALLBACK is on, but OVERSEER_WEBHOOK_SECRET unset"
            )
        environment: list[context.Environment] = []
        writes = write_gate.WriteGate(settings.sync_write_concurrency)
        jobs_scheduler = scheduler.Scheduler(client, settings, events.post_event, gate=writes)
        runtime = cls(
            settings=settings,
            client=client,
            cached=cached,
            tracker=tracker,
            followers=followers,
            signals=signals.SignalSender(),
            deliveries=deliveries.Deliveries(
                cached, settings, tracker, events.post_event, output=followers, fence=fence
            ),
            admission=admission.Admission(),
            scheduler=jobs_scheduler,
            resync=resync.Resync(
                lambda: environment[0],
                settings.resync_interval,
                refresh=lambda key: cached.refresh_execution(key.namespace, key.name),
            ),
            writes=writes,
            jobs=_job_watch(settings, client, cached, jobs_scheduler),
            settler=settling.Settler(
                cached, writes, retry_min=settings.retry_min, retry_max=settings.retry_max
            ),
            expiry=expiry.ExpirySweep(client, lambda: environment[0]),
        )
        environment.append(runtime.environment)
        runtime.start_helpers()
        return runtime

    def start_helpers(self) -> None:
        """Start the helpers' own tasks (the others start on first use)."""
        self.trimmer.start()
        self.jobs.start()
        self.expiry.start()

    @property
    def environment(self) -> context.Environment:
        """What the reactions to executions work with."""
        return context.Environment(
            client=self.cached,
            settings=self.settings,
            tracker=self.tracker,
            post_event=events.post_event,
            output=self.followers,
            signals=self.signals,
            accounts=self.accounts,
        )

    def log_calls(self) -> None:
        """Log the API calls this process made so far (the benchmarks read the line)."""
        calls = {"reads": dict(self.client.reads), "writes": dict(self.client.writes)}
        log.info("API calls so far: %s", json.dumps(calls, sort_keys=True))

    def log_calls_on_signal(self) -> None:
        """SIGUSR2 logs the API calls so far; call it in the running event loop."""
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, self.log_calls)

    async def close(self) -> None:
        """Stop the helpers' tasks, then the client they use."""
        self.log_calls()
        await self.trimmer.close()
        await self.jobs.close()
        await self.resync.close()
        await self.settler.close()
        await self.expiry.close()
        await self.scheduler.close()
        await self.deliveries.close()
        self.tracker.close()
        await self.followers.close()
        await self.client.close()


def _job_watch(
    settings: Settings,
    client: kube.Kube,
    cached: watch_cache.CachingKube,
    jobs_scheduler: scheduler.Scheduler,
) -> job_watch.JobWatch:
    """The OverseerJob watch, which feeds the reactions' cache and the scheduler."""

    def notice(body: Mapping[str, Any], deleted: bool) -> None:
        cached.seen(watch_cache.JOB, body, deleted=deleted)
        jobs_scheduler.observe(body, deleted=deleted)

    return job_watch.JobWatch(
        client,
        settings.namespaces,
        notice,
        retry_min=settings.retry_min,
        retry_max=settings.retry_max,
    )


def _unfenced() -> None:
    """No leader election (a test that builds the runtime alone): every write goes."""


def fence_of(memo: kopf.Memo) -> fencing.Fence | None:
    """The leader election's fence ``__main__`` handed to kopf, if any."""
    fence = memo.get(FENCE_KEY)
    return fence if callable(fence) else None


def settings_of(memo: kopf.Memo) -> Settings:
    """The settings ``__main__`` built and handed to kopf."""
    settings = memo.get(SETTINGS_KEY)
    if not isinstance(settings, Settings):
        msg = "no settings on the memo: run the operator with python -m overseer.operator"
        raise TypeError(msg)
    return settings


def of(memo: kopf.Memo) -> Runtime:
    """The runtime the start-up handler built."""
    value = memo.get(RUNTIME_KEY)
    if not isinstance(value, Runtime):
        msg = "the operator's runtime is not built: the start-up handler has not run"
        raise TypeError(msg)
    return value


async def with_cluster_service_cidrs(settings: Settings) -> Settings:
    """``settings`` with the cluster's Service CIDRs refused by webhooks, when none were given.

    A ClusterIP may lie outside the private ranges (GKE's default is 34.118.224.0/20), so
    an empty ``OVERSEER_SERVICE_CIDR`` is filled from the cluster: the ServiceCIDR objects
    (``networking.k8s.io/v1``), else the widest range the API server accepts around the
    ``default/kubernetes`` Service's ClusterIP (/12 for IPv4, /108 for IPv6). The API
    server's ``--service-cluster-ip-range`` flag itself is not readable through the API.
    """
    if settings.service_cidr:
        return settings
    cidrs, cluster_ips = await kube_ranges.read_service_cidrs(settings.kubeconfig)
    ranges = url_policy.plan_service_ranges(cidrs, cluster_ips)
    if not ranges:
        log.warning(
            "the cluster's Service CIDR could not be read: set OVERSEER_SERVICE_CIDR "
            "(webhooks.serviceCidrs in the chart) so hooks cannot reach Services by ClusterIP"
        )
        return settings
    log.info("webhooks refuse the cluster's Service range(s) %s", ", ".join(map(str, ranges)))
    return settings.model_copy(update={"service_cidr": ranges})
