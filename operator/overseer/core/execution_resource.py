"""The one builder of OverseerExecution objects: the scheduler, the API and tests use it.

Pure. :func:`build_execution` freezes what an execution runs (the job's definition, or a
given one for a repeat, and its commit) with its id, parameters and trigger, and names
it after its job and id (``core.names``), so two creations of the same id collide
(HTTP 409) instead of running twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from overseer.core import names
from overseer.crd import base
from overseer.crd import execution as execution_

CREATED_BY_ANNOTATION = "overseer.dev/created-by"
"""Who created an execution through the API (``token:<name>`` or a Kubernetes user)."""


def build_execution(
    job: Mapping[str, Any],
    execution_id: str,
    *,
    trigger: execution_.Trigger,
    parameters: Mapping[str, str] | None = None,
    definition: Mapping[str, Any] | None = None,
    commit: str | None = None,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The OverseerExecution of ``job`` (an OverseerJob body) with id ``execution_id``.

    ``definition`` and ``commit`` default to the job's current ones (``spec.definition``,
    ``spec.source.commit``); a repeat passes those of the execution it repeats. The spec
    is validated by the CRD model, so what cannot be stored fails here, not at the API
    server.
    """
    job_name = str(job["metadata"]["name"])
    spec = execution_.ExecutionSpec.model_validate(
        {
            "job": job_name,
            "executionId": execution_id,
            "parameters": dict(parameters or {}),
            "trigger": base.to_body(trigger),
            "definition": definition if definition is not None else job["spec"]["definition"],
            "commit": commit or job["spec"]["source"]["commit"],
        }
    )
    metadata: dict[str, Any] = {
        "name": names.execution_resource_name(job_name, execution_id),
        "namespace": job["metadata"]["namespace"],
        "labels": {**(labels or {}), execution_.JOB_LABEL: job_name},
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": base.API_VERSION,
        "kind": execution_.KIND.kind,
        "metadata": metadata,
        "spec": base.to_body(spec),
    }
