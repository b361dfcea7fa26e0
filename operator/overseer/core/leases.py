"""Leader election on ``coordination.k8s.io/v1`` Leases: what a candidate does with one.

Pure: :mod:`overseer.operator.leadership` reads each Lease, asks :func:`plan_step` what to
do, and writes what :func:`build_lease` returns with a compare-and-swap on the Lease's
``resourceVersion``, so two candidates never both win one round.

Time follows client-go's election: a candidate never compares its clock with the
holder's. It notes *when it saw* the Lease's record change (its own monotonic clock)
and takes the Lease only after the holder's ``leaseDurationSeconds`` have passed since
then without a change. The holder, in turn, stops acting ``renew_deadline`` seconds
after the start of its last successful renewal, which is before any candidate could
have seen that renewal expire (docs/decisions.rst, "Two operators").
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

LEASE_NAME = "overseer-operator"
"""The Lease every operator of a namespace contends for (OVERSEER_LEASE_NAME)."""
COMPONENT_LABEL = "app.kubernetes.io/component"


@dataclasses.dataclass(frozen=True)
class Timing:
    """How long a Lease lasts, when its holder gives up, how often everyone tries."""

    duration: float
    """Seconds a candidate waits after the last renewal it saw before it takes the Lease."""
    renew_deadline: float
    """Seconds after its last renewal started that a holder stops acting, unless renewed."""
    retry_period: float
    """Seconds between two attempts to acquire or renew."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.duration:
            msg = "need 0 < retry period < renew deadline < lease duration"
            raise ValueError(msg)


@dataclasses.dataclass(frozen=True)
class Record:
    """What a Lease says: who holds it, since when, and until when at the earliest."""

    holder: str
    duration: float
    renew_time: str
    acquire_time: str
    transitions: int
    resource_version: str

    @property
    def version(self) -> tuple[str, str, str]:
        """What changes whenever anyone writes the Lease: a candidate's clock restarts then."""
        return (self.holder, self.renew_time, self.resource_version)


class Step(enum.Enum):
    """What a candidate does with one Lease this round."""

    CREATE = "create"
    """No Lease yet: create it, holding it."""
    RENEW = "renew"
    """This candidate holds it: write a fresh renewTime."""
    TAKE = "take"
    """Released, or not renewed for its duration: take it over."""
    WAIT = "wait"
    """Someone else holds it: try again later."""


def parse_lease(body: Mapping[str, Any]) -> Record:
    """The record of a Lease object (as the API returns it)."""
    spec = body.get("spec") or {}
    return Record(
        holder=str(spec.get("holderIdentity") or ""),
        duration=float(spec.get("leaseDurationSeconds") or 0),
        renew_time=str(spec.get("renewTime") or ""),
        acquire_time=str(spec.get("acquireTime") or ""),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str((body.get("metadata") or {}).get("resourceVersion") or ""),
    )


def plan_step(record: Record | None, identity: str, *, unchanged_for: float) -> Step:
    """What ``identity`` does with a Lease whose record it has seen unchanged for
    ``unchanged_for`` seconds (on its own clock)."""
    if record is None:
        return Step.CREATE
    if record.holder == identity:
        return Step.RENEW
    if not record.holder or unchanged_for >= record.duration:
        return Step.TAKE
    return Step.WAIT


def _micro_time(when: datetime) -> str:
    """RFC 3339 with microseconds, as ``MicroTime`` fields are written."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_lease(
    namespace: str,
    name: str,
    identity: str,
    *,
    duration: float,
    now: datetime,
    previous: Record | None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Lease held by ``identity`` from ``now``: renewed when it held ``previous``,
    taken over (one more transition) otherwise; released when ``identity`` is empty."""
    renewing = previous is not None and previous.holder == identity and identity
    transitions = previous.transitions if previous is not None else 0
    if previous is not None and not renewing and identity:
        transitions += 1
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if previous is not None:
        metadata["resourceVersion"] = previous.resource_version
    acquired = previous.acquire_time if renewing and previous is not None else _micro_time(now)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": identity,
            "leaseDurationSeconds": max(1, round(duration)),
            "acquireTime": acquired,
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        },
    }
