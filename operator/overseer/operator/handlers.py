"""Every kopf handler Overseer registers, in one place. Each is glue to a reaction.

Importing this module registers the handlers with kopf's default registry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import kopf

from overseer import errors
from overseer.core import execution_job, settlement, sync
from overseer.crd import base
from overseer.crd import execution as execution_crd
from overseer.crd import repository as repository_crd
from overseer.operator import (
    admission,
    context,
    diffbase,
    executions,
    metrics,
    parse_cache,
    repositories,
    runtime,
)

PREFIX = "overseer.dev"
# kopf leaves annotations under its own prefix out of an object's "essence", so
# its bookkeeping must not share ours: a sync request (overseer.dev/requested-sync)
# would otherwise never reach the update handler.
KOPF_PREFIX = "kopf.overseer.dev"
EXECUTION_LABEL = execution_job.EXECUTION_LABEL
LIST_CHUNK = 500
"""Objects per page of kopf's listing (at start, and after a watch expired)."""


@kopf.on.startup()
async def configure(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Keep kopf's bookkeeping under our own prefix, quietly; watch only Overseer's pods
    and Jobs (server-side label selector); build the runtime every handler shares."""
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    # Only what the handlers diff: an execution's whole spec (its parameters) may not fit
    # in an annotation (overseer.core.diffbase).
    settings.persistence.diffbase_storage = diffbase.DiffedFieldsStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # Handler logs would otherwise become Kubernetes Events: API writes on every sync.
    settings.posting.level = logging.WARNING
    ours = runtime.settings_of(memo)
    # A half-open connection never hangs a watch or a request for good: the server ends
    # each watch, the client gives up a minute later, kopf's inactivity timeout (70 s, the
    # server's bookmarks come every minute) resumes a silent one.
    # kopf sends server_timeout as timeoutSeconds, which the API server parses as an int.
    settings.watching.server_timeout = int(ours.watch_timeout)
    settings.watching.client_timeout = int(ours.watch_timeout) + 60
    settings.watching.connect_timeout = ours.kube_timeout
    settings.networking.connect_timeout = ours.kube_timeout
    settings.networking.request_timeout = ours.kube_timeout * 2
    # Lists in pages, as kubectl does: a restart lists 10,000 executions, and one answer
    # of them all would be held in memory at once (tens of MiB of JSON).
    settings.watching.chunk_size = LIST_CHUNK
    settings.watching.label_selectors["v1", "pods"] = EXECUTION_LABEL
    settings.watching.label_selectors["batch", "v1", "jobs"] = EXECUTION_LABEL
    # Settled executions leave the watch: a restart lists only those that need the
    # operator (overseer.core.settlement; docs/decisions.rst).
    settings.watching.label_selectors[base.GROUP, execution_crd.KIND.plural] = (
        settlement.WATCH_SELECTOR
    )
    # The settings were built once by __main__ (kopf.run's memo): never read again here.
    ours = await runtime.with_cluster_service_cidrs(ours)
    memo[runtime.RUNTIME_KEY] = shared = runtime.Runtime.start(ours, runtime.fence_of(memo))
    shared.log_calls_on_signal()


SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod, reach the API server at KUBERNETES_SERVICE_HOST, as client-go does.

    kopf's own in-cluster login dials ``kubernetes.default.svc``, which needs
    cluster DNS; some clusters (ours for development among them) have none.
    Outside a pod, the kubeconfig decides.
    """
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    token_file = SERVICE_ACCOUNT / "token"
    if not host or not token_file.exists():
        return kopf.login_with_kubeconfig(**kwargs)
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a name, not an address
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    namespace_file = SERVICE_ACCOUNT / "namespace"
    return kopf.ConnectionInfo(
        server=f"https://{host}:{port}",
        ca_path=str(SERVICE_ACCOUNT / "ca.crt"),
        scheme="Bearer",
        # Re-read at each login: kopf logs in again when a rotated token is refused.
        token=token_file.read_text().strip(),
        default_namespace=namespace_file.read_text().strip() if namespace_file.exists() else None,
    )


@kopf.on.cleanup()
async def close(*, memo: kopf.Memo, **_: Any) -> None:
    await runtime.of(memo).close()


@kopf.on.update(base.GROUP, base.VERSION, repository_crd.KIND.plural)
def wake_sync(*, namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    """A changed spec or a sync request (annotation) runs the sync now, not at the interval."""
    wake = runtime.of(memo).wakes.get((namespace or "", name))
    if wake is not None:
        wake.set()


@kopf.daemon(base.GROUP, base.VERSION, repository_crd.KIND.plural, cancellation_timeout=2.0)
async def run_syncs(
    *,
    name: str,
    namespace: str | None,
    uid: str,
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    **_: Any,
) -> None:
    """Sync the repository at its interval, at once when woken, until it is deleted;
    never before the OverseerJobs are listed (a sync planned on an empty index would
    write every job again)."""
    assert namespace is not None, "OverseerRepository is a namespaced kind"
    shared = runtime.of(memo)
    wake = shared.wakes.setdefault((namespace, name), asyncio.Event())
    failures = 0
    cache = parse_cache.ParseCache()
    try:
        await _sleep(math.inf, shared.jobs.ready, stopped)
        while not stopped:
            # Cleared before the pass reads the object: a request made during the pass
            # wakes the next one at once instead of waiting for the interval.
            wake.clear()
            annotations = meta.get("annotations") or {}
            repo = repositories.Repository(
                namespace=namespace,
                name=name,
                uid=uid,
                generation=meta.get("generation"),
                spec=dict(spec),
                status=dict(status),
                body=body,
                sync_request=annotations.get(sync.REQUESTED_SYNC_ANNOTATION),
            )
            started = time.monotonic()
            outcome = await repositories.run_once(
                repo,
                shared.jobs.index,
                client=shared.client,
                settings=shared.settings,
                failures=failures,
                cache=cache,
                gate=shared.writes,
            )
            error = outcome.error.reason if outcome.error is not None else None
            metrics.sync_done(namespace, name, time.monotonic() - started, error)
            failures = failures + 1 if outcome.error and not outcome.error.stalled else 0
            await _sleep(outcome.delay, wake, stopped)
    finally:
        shared.wakes.pop((namespace, name), None)
        if stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
            await repositories.forget(uid, shared.settings)


async def _sleep(delay: float, wake: asyncio.Event, stopped: kopf.DaemonStopped) -> None:
    """Wait ``delay`` seconds (``math.inf``: for good), less when woken or stopped."""
    if wake.is_set() or stopped:
        return
    woken = asyncio.ensure_future(wake.wait())
    stopping = asyncio.ensure_future(stopped.wait())
    timeout = None if math.isinf(delay) else delay
    try:
        await asyncio.wait({woken, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        stopping.cancel()


# --- executions ---------------------------------------------------------------------------


@kopf.on.resume(base.GROUP, base.VERSION, execution_crd.KIND.plural)
@kopf.on.create(base.GROUP, base.VERSION, execution_crd.KIND.plural)
async def start_execution(
    *,
    body: kopf.Body,
    memo: kopf.Memo,
    # kopf passes the index by its name; the default only satisfies kopf's handler protocol.
    executions_by_scope: admission.ScopeIndex | None = None,
    **_: Any,
) -> None:
    """Create the execution's Secret and Job (idempotent: names are the execution's),
    when its concurrency admits it."""
    assert executions_by_scope is not None, "kopf passes every index to every handler"
    shared = runtime.of(memo)
    shared.cached.seen(execution_crd.KIND.kind, body)
    try:
        if admission.needs_admission(body):  # its concurrency decides when its Job is made
            await shared.admission.admit(body, shared.environment, executions_by_scope)
        else:
            await executions.start_execution(body, shared.environment)
    except errors.KubeError as error:
        raise kopf.TemporaryError(error.message, delay=shared.settings.retry_min) from None


@kopf.on.event("v1", "pods", labels={EXECUTION_LABEL: kopf.PRESENT})
async def follow_pod(
    *,
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    labels: kopf.Labels,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Each change of an execution's pod (its deletion too) may change its phase."""
    assert namespace is not None, "pods are namespaced"
    key = context.Key(namespace, labels[EXECUTION_LABEL])
    shared = runtime.of(memo)
    shared.cached.seen("Pod", body, deleted=type == "DELETED")
    await executions.observe_execution(
        key, shared.environment, pod=dict(body), pod_deleted=type == "DELETED"
    )


@kopf.on.event("batch", "v1", "jobs", labels={EXECUTION_LABEL: kopf.PRESENT})
async def follow_job(
    *,
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    labels: kopf.Labels,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """The Job's conditions (a deadline, a retry, the end) may change the phase."""
    assert namespace is not None, "Jobs are namespaced"
    key = context.Key(namespace, labels[EXECUTION_LABEL])
    shared = runtime.of(memo)
    shared.cached.seen("Job", body, deleted=type == "DELETED")
    await executions.observe_execution(key, shared.environment)


# --- signals ------------------------------------------------------------------------------


# on.update, not on.field: a field handler is also a creation handler, and two creation
# handlers make kopf write its progress annotation between them (one more write, and one
# more event for every handler, per execution). Signals present at creation reach the job
# through start_execution's observation.
# The diff base of an execution holds this field only (overseer.core.diffbase).
@kopf.on.update(base.GROUP, base.VERSION, execution_crd.KIND.plural, field=diffbase.SIGNALS_FIELD)
async def signal_execution(
    *, namespace: str | None, name: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """A request appended to spec.signals reaches the job now (overseer.operator.signals)."""
    assert namespace is not None and name is not None, "executions are namespaced"
    shared = runtime.of(memo)
    shared.cached.seen(execution_crd.KIND.kind, body)
    await executions.observe_execution(context.Key(namespace, name), shared.environment)


# --- concurrency and schedules ----------------------------------------------------------


@kopf.index(base.GROUP, base.VERSION, execution_crd.KIND.plural)
def executions_by_scope(
    *, namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[admission.ScopeKey, admission.IndexEntry] | None:
    """Executions that have not ended, by (namespace, concurrency scope), from the watch."""
    return admission.index_entry(namespace, name, spec, status)


@kopf.on.event(base.GROUP, base.VERSION, execution_crd.KIND.plural)
async def notice_execution(
    *,
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    executions_by_scope: admission.ScopeIndex | None = None,
    **_: Any,
) -> None:
    """Each change of an execution (the listing at start-up too): the reactions' cache
    keeps it; it may owe webhook deliveries (the lanes live in the event loop: async, it
    never blocks); the resync keeps those not settled, to observe them again at its
    interval; one that ended (or was deleted) frees a slot for the waiting ones, and a
    waiting one asked to stop is cancelled; a settled one is labelled, and leaves the
    watch (a DELETED then, handled as a deletion: each forgets it, nothing is cancelled
    that it still needs). One handler, not one per concern: kopf's cost per handler and
    event counts at thousands of executions."""
    assert executions_by_scope is not None, "kopf passes every index to every handler"
    shared = runtime.of(memo)
    deleted = type == "DELETED"
    metrics.execution_event(type)
    shared.cached.seen(execution_crd.KIND.kind, body, deleted=deleted)
    shared.deliveries.notice(dict(body), deleted=deleted)
    shared.resync.notice(body, deleted=deleted)
    shared.settler.notice(body, deleted=deleted)
    if namespace is not None:
        shared.admission.noticed(
            type,
            namespace,
            spec,
            status,
            env=shared.environment,
            index=executions_by_scope,
        )
