"""The one builder of OverseerExecution objects: the scheduler, the API and tests use it.

Pure. :func:`build_execution` freezes what an execution runs (the job's definition, or a
given one for a repeat, and its commit) with its id, parameters and trigger, and names
it after its job and id (``core.names``), so two creations of the same id collide
(HTTP 409) instead of running twice.

Secret parameters never go into the spec: :func:`build_execution` names the Secret
that holds them (``spec.secretParameters``), and :func:`build_secret_parameters` is
that Secret, owned by the execution once it exists (its uid), so it goes with it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from overseer import errors
from overseer.core import names
from overseer.crd import base
from overseer.crd import execution as execution_

SECRET_SUFFIX = "secret-parameters"  # noqa: S105 - a name, not a secret
SECRET_LABEL = "overseer.dev/secret-parameters-of"  # noqa: S105 - a label name
"""Label on the Secret of an execution's secret parameters: the execution's name."""
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
    secret_names: Sequence[str] = (),
) -> dict[str, Any]:
    """The OverseerExecution of ``job`` (an OverseerJob body) with id ``execution_id``.

    ``definition`` and ``commit`` default to the job's current ones (``spec.definition``,
    ``spec.source.commit``); a repeat passes those of the execution it repeats. The spec
    is validated by the CRD model, so what cannot be stored fails here, not at the API
    server. ``secret_names``: the parameters whose values :func:`build_secret_parameters`
    holds (``spec.secretParameters``), absent from ``parameters``.
    """
    job_name = str(job["metadata"]["name"])
    name = names.execution_resource_name(job_name, execution_id)
    fields: dict[str, Any] = {
        "job": job_name,
        "executionId": execution_id,
        "parameters": dict(parameters or {}),
        "trigger": base.to_body(trigger),
        "definition": definition if definition is not None else job["spec"]["definition"],
        "commit": commit or job["spec"]["source"]["commit"],
    }
    if secret_names:
        fields["secretParameters"] = {
            "secretName": secret_parameters_name(name),
            "names": sorted(secret_names),
        }
    spec = execution_.ExecutionSpec.model_validate(fields)
    metadata: dict[str, Any] = {
        "name": name,
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


def secret_parameters_name(execution_name: str) -> str:
    """The Secret holding the secret parameters of execution ``execution_name``."""
    return f"{execution_name}-{SECRET_SUFFIX}"


def build_secret_parameters(
    execution: Mapping[str, Any], values: Mapping[str, str]
) -> dict[str, Any]:
    """The Secret named by ``execution``'s ``spec.secretParameters``: one key per value.

    Owned by the execution (``execution`` as created, with its uid), so the garbage
    collector deletes it with the execution and the operator reads it as its own.
    """
    metadata = execution["metadata"]
    reference = execution["spec"]["secretParameters"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": reference["secretName"],
            "namespace": metadata["namespace"],
            "labels": {
                execution_.JOB_LABEL: str(execution["spec"]["job"]),
                SECRET_LABEL: str(metadata["name"]),
            },
            "ownerReferences": [
                {
                    "apiVersion": base.API_VERSION,
                    "kind": execution_.KIND.kind,
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "type": "Opaque",
        "immutable": True,
        "data": {
            name: base64.b64encode(values[name].encode("utf-8")).decode("ascii")
            for name in reference["names"]
        },
    }


def read_secret_parameters(
    execution: Mapping[str, Any], secret: Mapping[str, Any] | None
) -> dict[str, str]:
    """The values ``secret`` holds for ``execution``'s ``spec.secretParameters``.

    Raises :class:`overseer.errors.SecretParametersError` when the Secret is missing, is
    not owned by this execution (its uid: a Secret made for anything else is never
    read), or lacks one of the names. Messages name keys, never values.
    """
    metadata = execution["metadata"]
    reference = (execution.get("spec") or {}).get("secretParameters") or {}
    where = f"the Secret {reference.get('secretName')!r} named by spec.secretParameters"
    if secret is None:
        raise errors.SecretParametersError(
            f"{where} does not exist (the API creates it with the execution, and it goes "
            "with it); execute the job again with its secret parameters"
        )
    owners = (secret.get("metadata") or {}).get("ownerReferences") or ()
    if not any(
        o.get("kind") == execution_.KIND.kind and o.get("uid") == metadata.get("uid")
        for o in owners
    ):
        raise errors.SecretParametersError(
            f"{where} is not this execution's (no ownerReference with its uid), so it is "
            "never read; create it with the execution as its owner"
        )
    data = secret.get("data") or {}
    values: dict[str, str] = {}
    for name in reference.get("names") or ():
        try:
            values[name] = base64.b64decode(data[name], validate=True).decode("utf-8")
        except (KeyError, ValueError):
            raise errors.SecretParametersError(
                f"{where} has no UTF-8 value under the key {name!r}"
            ) from None
    return values
