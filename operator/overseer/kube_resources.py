"""What both halves of :class:`overseer.kube.Kube` share: the kinds it knows, their URL
paths, its field managers, and how a lightkube or HTTP failure becomes a
:class:`errors.KubeError`.
"""

from __future__ import annotations

from typing import Any

import httpx2
from lightkube import generic_resource
from lightkube.core.exceptions import ApiError
from lightkube.resources.authentication_v1 import TokenReview
from lightkube.resources.authorization_v1 import SubjectAccessReview
from lightkube.resources.batch_v1 import Job
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Event, Pod, Secret, ServiceAccount

from overseer import errors
from overseer.crd import base
from overseer.crd import execution as execution_crd
from overseer.crd import job as job_crd
from overseer.crd import repository as repository_crd

# lightkube 1.x speaks through httpx2: its transport errors are httpx2's, not httpx's.
HTTPError = httpx2.HTTPError

FIELD_MANAGER = "overseer"
API_FIELD_MANAGER = "overseer-api"
"""The API's field manager: it owns ``spec.active`` of jobs, the sync never applies it."""

OverseerRepository = generic_resource.create_namespaced_resource(
    base.GROUP, base.VERSION, repository_crd.KIND.kind, repository_crd.KIND.plural
)
OverseerJob = generic_resource.create_namespaced_resource(
    base.GROUP, base.VERSION, job_crd.KIND.kind, job_crd.KIND.plural
)
OverseerExecution = generic_resource.create_namespaced_resource(
    base.GROUP, base.VERSION, execution_crd.KIND.kind, execution_crd.KIND.plural
)
RESOURCES: dict[str, Any] = {
    repository_crd.KIND.kind: OverseerRepository,
    job_crd.KIND.kind: OverseerJob,
    execution_crd.KIND.kind: OverseerExecution,
    "ConfigMap": ConfigMap,
    "Secret": Secret,
    "ServiceAccount": ServiceAccount,
    "Job": Job,
    "Pod": Pod,
    "Lease": Lease,
    "Event": Event,
}
# Cluster-scoped reviews: created to ask a question, never stored by the API server.
REVIEWS: dict[str, Any] = {
    "TokenReview": TokenReview,
    "SubjectAccessReview": SubjectAccessReview,
}


def object_path(kind: str, namespace: str, name: str) -> str:
    """The URL path of one namespaced object."""
    api = RESOURCES[kind]._api_info
    group, version = api.resource.group, api.resource.version
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    return f"{prefix}/namespaces/{namespace}/{api.plural}/{name}"


def wrap(error: Exception, doing: str) -> errors.KubeError:
    """The :class:`errors.KubeError` for a failed call; ``doing`` says what was tried."""
    if isinstance(error, ApiError):
        status = error.status.code
        text = f"{doing}: {error.status.message or error.status.reason} (HTTP {status})"
        if status == 422:
            return errors.KubeInvalidObjectError(text, status)
        return errors.KubeError(text, status)
    return errors.KubeError(f"{doing}: {error}")


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube model (or a generic resource's dict) as a plain dict."""
    if isinstance(obj, dict):
        return dict(obj) if not hasattr(obj, "to_dict") else obj.to_dict()
    result: dict[str, Any] = obj.to_dict()
    return result
