"""The ServiceAccount executions' pods run as, one per namespace. Pure.

Every pod the builder makes names it (:data:`execution_job.EXECUTION_SERVICE_ACCOUNT`)
and mounts no token; the operator creates it on a namespace's first execution. Bound to
nothing, it keeps pods from running as the namespace's ``default``, which RoleBindings
may name; a definition cannot pick another (docs/security.rst).
"""

from __future__ import annotations

from typing import Any

from overseer.core import execution_job

NAME = execution_job.EXECUTION_SERVICE_ACCOUNT


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
