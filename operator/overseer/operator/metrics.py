"""The operator's Prometheus metrics (``GET /metrics``), documented in docs/operations.rst.

Every metric is a counter, gauge or histogram that the reactions move as they act, in
this process's memory: a scrape reads them and makes no API call. They live in one
registry of this module (not prometheus_client's default one, so that nothing else a
library registers leaks into the page), and each reaction calls one of the small
functions below rather than touching a metric object.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import prometheus_client as prom

from overseer_library import protocol

REGISTRY = prom.CollectorRegistry(auto_describe=True)

EXECUTIONS = prom.Counter(
    "overseer_executions",
    "Executions that reached a phase, by phase and reason (written by this operator).",
    ["phase", "reason"],
    registry=REGISTRY,
)
SYNCS = prom.Histogram(
    "overseer_sync_duration_seconds",
    "Duration of one sync of a repository, by namespace and repository.",
    ["namespace", "repository"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
SYNC_ERRORS = prom.Counter(
    "overseer_sync_errors",
    "Syncs that failed, by namespace, repository and reason.",
    ["namespace", "repository", "reason"],
    registry=REGISTRY,
)
WEBHOOKS = prom.Counter(
    "overseer_webhook_deliveries",
    "Webhook delivery attempts by outcome: Delivered, Pending (to be retried), Failed, "
    "GivenUp, Gone.",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_LATENCY = prom.Histogram(
    "overseer_webhook_delivery_duration_seconds",
    "Duration of one webhook delivery attempt, resolution and answer included.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
SIGNALS = prom.Counter(
    "overseer_signal_deliveries",
    "Requests of spec.signals handled, by result: Sent, Refused, NotDelivered, Failed.",
    ["result"],
    registry=REGISTRY,
)
FOLLOWER_LAG = prom.Histogram(
    "overseer_output_follower_lag_seconds",
    "How long after the job wrote a timed supervisor frame (start, event, exit...) the "
    "operator read it from the pod's log.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
OUTPUT_HELD = prom.Gauge(
    "overseer_output_reports_held",
    "Executions whose archive state the operator keeps in memory for their status: those "
    "whose log is followed now, and those ended whose status does not carry it yet.",
    registry=REGISTRY,
)
ARCHIVE_BYTES = prom.Counter(
    "overseer_archive_bytes",
    "Bytes of job output appended to the archive, by stream.",
    ["stream"],
    registry=REGISTRY,
)
EXECUTION_EVENTS = prom.Counter(
    "overseer_execution_watch_events",
    "Events of the operator's watch of OverseerExecutions, by type (LISTED at a start): "
    "settled executions leave the watch, so a restart lists only the others.",
    ["type"],
    registry=REGISTRY,
)
SETTLED = prom.Counter(
    "overseer_executions_settled",
    "Executions labelled settled by this operator (they leave its watch).",
    registry=REGISTRY,
)
LEADER = prom.Gauge(
    "overseer_leader",
    "1 while this operator holds its Lease(s) and acts, 0 while it stands by.",
    registry=REGISTRY,
)
LEADER_TRANSITIONS = prom.Counter(
    "overseer_leader_transitions",
    "Times this operator started or stopped leading.",
    ["to"],
    registry=REGISTRY,
)


def phase_reached(phase: str, reason: str | None) -> None:
    EXECUTIONS.labels(phase=phase, reason=reason or phase).inc()


def execution_event(kind: str | None) -> None:
    EXECUTION_EVENTS.labels(type=kind or "LISTED").inc()


def settled() -> None:
    SETTLED.inc()


def sync_done(namespace: str, repository: str, seconds: float, error: str | None) -> None:
    SYNCS.labels(namespace=namespace, repository=repository).observe(seconds)
    if error is not None:
        SYNC_ERRORS.labels(namespace=namespace, repository=repository, reason=error).inc()


def webhook_attempted(outcome: str, seconds: float) -> None:
    WEBHOOKS.labels(outcome=outcome).inc()
    WEBHOOK_LATENCY.observe(seconds)


def signal_handled(result: str) -> None:
    SIGNALS.labels(result=result).inc()


def frame_read(record: protocol.Record) -> None:
    """Observe the lag of a timed frame just read (clocks: the node's and ours)."""
    when = getattr(record, "time", None)
    if isinstance(when, float | int):
        FOLLOWER_LAG.observe(max(0.0, time.time() - float(when)))


def count_output_held(held: Callable[[], int]) -> None:
    """Read ``held`` at each scrape for :data:`OUTPUT_HELD` (the runtime built last's)."""
    OUTPUT_HELD.set_function(held)


def archived(stream: str, size: int) -> None:
    ARCHIVE_BYTES.labels(stream=stream).inc(size)


def leading(now_leading: bool) -> None:
    LEADER.set(1 if now_leading else 0)
    LEADER_TRANSITIONS.labels(to="leader" if now_leading else "follower").inc()


def page() -> tuple[bytes, str]:
    """The text exposition of every metric, and its content type."""
    return prom.generate_latest(REGISTRY), prom.CONTENT_TYPE_LATEST
