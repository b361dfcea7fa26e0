"""The ServiceAccount executions' pods run as, one per namespace. Pure.

Every pod the builder makes names it (:data:`execution_job.EXECUTION_SERVICE_ACCOUNT`)
and mounts no token; the operator creates it on a namespace's first execution. Bound to
nothing, it keeps pods from running as the namespace's ``default``, which RoleBindings
may name; a definition cannot pick another (docs/security.rst).

The operator may only ``create`` it (no get, list or watch), so it remembers where it
did (:class:`Remembered`), and takes a Job that has waited long for a pod it never got
(:func:`waiting_for_pod_since`) as the sign that someone deleted it
(:mod:`overseer.operator.execution_accounts`).
"""

from __future__ import annotations

import collections
from datetime import datetime
from typing import Any, Final

from overseer.core import execution_facts, execution_job

NAME = execution_job.EXECUTION_SERVICE_ACCOUNT

MAX_REMEMBERED: Final = 4096
"""Namespaces one operator process remembers (about 100 bytes each); past that the least
recently used is forgotten, and its next execution creates the ServiceAccount again."""

_POD_COUNTS = ("active", "ready", "terminating", "succeeded", "failed")


def build_service_account(namespace: str) -> dict[str, Any]:
    """The ServiceAccount in ``namespace``: no token, no owner (shared by every execution
    there, so it outlives each)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "labels": {
                execution_job.MANAGED_BY_LABEL: execution_job.MANAGER,
                execution_job.COMPONENT_LABEL: execution_job.COMPONENT,
            },
        },
        "automountServiceAccountToken": False,
    }


class Remembered:
    """The namespaces whose ServiceAccount this process created or found there (a 409),
    each with when it last did; the least recently used is forgotten past ``limit``.

    Times are the caller's (a monotonic clock's seconds)."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self._limit = limit
        self._at: collections.OrderedDict[str, float] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._at)

    def confirmed_at(self, namespace: str) -> float | None:
        """When the namespace's ServiceAccount was last made or found; None: not known."""
        at = self._at.get(namespace)
        if at is not None:
            self._at.move_to_end(namespace)
        return at

    def confirm(self, namespace: str, now: float) -> None:
        """The namespace's ServiceAccount was just made or found."""
        self._at[namespace] = now
        self._at.move_to_end(namespace)
        while len(self._at) > self._limit:
            self._at.popitem(last=False)


def waiting_for_pod_since(observed: execution_facts.Observed) -> datetime | None:
    """When the execution's Job began to wait for a pod it never had: its creation time,
    while no pod of it was ever seen (none listed, none known gone, none counted in its
    status) and it has not finished; else None.

    The pod normally follows within a second. A Job stays so when the Job controller
    cannot create it (a ``FailedCreate`` Event): the ServiceAccount deleted, a
    ResourceQuota, an admission webhook.
    """
    job = observed.job
    if job is None or observed.pod is not None or observed.pod_name or observed.pod_gone:
        return None
    status = job.get("status") or {}
    if any(status.get(count) for count in _POD_COUNTS) or status.get("completionTime"):
        return None
    if any(c.get("status") == "True" for c in status.get("conditions") or ()):
        return None  # finished, failing or suspended: not waiting for a pod
    return execution_facts.parse_time((job.get("metadata") or {}).get("creationTimestamp"))
