"""Build the batch/v1 Job that runs one execution, and the Secret of its parameters.

Pure: an :class:`ExecutionContext` (what the OverseerExecution holds, plus the name and
items of its commit's ``bin/`` bundle) and :class:`JobSettings` in, plain manifests out.
The operator creates the Secret first, then the Job; both are named after the execution,
so an operator restart finds them again and never creates a second one.

The job's command and the escaping of everything that reaches the container's
``command``, ``args`` or an env ``value`` are :mod:`overseer.core.execution_command`'s.
``docs/executions.rst`` explains each choice.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from overseer import errors
from overseer.core import accounts, names
from overseer.core import bundle as bundle_
from overseer.core import execution_command as command
from overseer.crd import base, types
from overseer.crd import definition as defn
from overseer.crd import execution as execution_
from overseer_library import control
from overseer_library import settings as supervisor_settings
from overseer_library.commands import param

LIBRARY_IMAGE = accounts.LIBRARY_IMAGE
LIBRARY_ROOT = "/opt/overseer/library"
SUPERVISOR = f"{LIBRARY_ROOT}/bin/overseer-supervisor"
REPO_BIN = supervisor_settings.DEFAULT_REPO_BIN
CONTROL_SOCKET = control.DEFAULT_SOCKET
TMP = "/tmp"  # noqa: S108  (an emptyDir of the pod's own)
PARAMS_DIR = "/overseer/params"
PARAMS_KEY = "params.json"
PARAMS_FILE = f"{PARAMS_DIR}/{PARAMS_KEY}"
LIBRARY_COPY = "/overseer/library-copy"
SCRIPT_ENV = command.SCRIPT_ENV

CONTAINER = "job"
INIT_CONTAINER = "overseer-library"
LIBRARY_USER = accounts.LIBRARY_USER
LIBRARY_UID = accounts.LIBRARY_UID
RESERVED_ENV_PREFIX = command.RESERVED_ENV_PREFIX

EXECUTION_LABEL = "overseer.dev/execution"
EXECUTION_UID_LABEL = "overseer.dev/execution-uid"
"""The uid of the execution a Job, its pods and its Secret were made for: an execution
created again under an old name never takes the old one's objects for its own."""
JOB_LABEL = execution_.JOB_LABEL
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"
EXECUTION_ID_ANNOTATION = "overseer.dev/execution-id"
MANAGER = "overseer"
COMPONENT = "execution"
EXECUTION_SERVICE_ACCOUNT = "overseer-execution"
"""Every execution's pod runs as it, never as ``default`` (see execution_account)."""

PullPolicy = Literal["Always", "IfNotPresent", "Never"]

# Re-exported: callers of the builder use these (the API checks with check_runnable).
escape = command.escape
param_env_name = command.param_env_name
check_runnable = command.check_runnable


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """What the operator's configuration decides about every execution's pod."""

    library_image: str = LIBRARY_IMAGE
    image_pull_policy: PullPolicy | None = None
    """For the library image (job container or init container); Kubernetes' default if None."""
    service_account: str = EXECUTION_SERVICE_ACCOUNT
    """serviceAccountName of every pod; its token is never mounted."""


@dataclasses.dataclass(frozen=True)
class ExecutionContext:
    """One OverseerExecution and the ``bin/`` bundle of its commit."""

    namespace: str
    name: str
    """The OverseerExecution's resource name (a DNS-1123 label)."""
    uid: str
    spec: execution_.ExecutionSpec
    bundle_name: str | None = None
    """The bin/ ConfigMap of ``spec.commit``; None when the repository has no bin/."""
    bundle_items: tuple[Mapping[str, Any], ...] = ()
    """Its volume items (key, path, mode), as :func:`overseer.core.bundle.volume_items`."""
    secret_values: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    """The values of ``spec.secretParameters``, read from its Secret (never in the spec)."""

    @classmethod
    def from_body(
        cls,
        body: Mapping[str, Any],
        bundle: Mapping[str, Any] | None = None,
        secret_values: Mapping[str, str] | None = None,
    ) -> ExecutionContext:
        """From an OverseerExecution as read from the API, its bundle ConfigMap (or None)
        and the values of its secret parameters."""
        metadata = body["metadata"]
        return cls(
            namespace=metadata["namespace"],
            name=metadata["name"],
            uid=metadata["uid"],
            spec=execution_.ExecutionSpec.model_validate(body["spec"]),
            bundle_name=None if bundle is None else bundle["metadata"]["name"],
            bundle_items=() if bundle is None else tuple(bundle_.volume_items(bundle)),
            secret_values=dict(secret_values or {}),
        )

    def plan(self) -> command.Plan:
        """The parameters it runs with: the spec's and the secret ones together."""
        supplied = {**self.spec.parameters, **self.secret_values}
        return command.plan(self.spec.definition, supplied, frozenset(self.secret_values))


# --- names and escaping ----------------------------------------------------------------


def job_name(execution_name: str) -> str:
    """The Job's name: the execution's own (already a unique DNS-1123 label, <= 63)."""
    if not names.is_dns_label(execution_name):
        msg = f"{execution_name!r} is not an execution resource name (a DNS-1123 label)"
        raise ValueError(msg)
    return execution_name


def parameters_secret_name(execution_name: str) -> str:
    """The name of the Secret that holds an execution's parameters."""
    return f"{job_name(execution_name)}-params"


# --- the pieces of the pod -------------------------------------------------------------


def _labels(context: ExecutionContext) -> dict[str, str]:
    return {
        EXECUTION_LABEL: context.name,
        EXECUTION_UID_LABEL: context.uid,
        JOB_LABEL: context.spec.job,
        MANAGED_BY_LABEL: MANAGER,
        COMPONENT_LABEL: COMPONENT,
    }


def _owner(context: ExecutionContext) -> dict[str, Any]:
    return {
        "apiVersion": base.API_VERSION,
        "kind": execution_.KIND.kind,
        "name": context.name,
        "uid": context.uid,
        "controller": True,
        "blockOwnerDeletion": False,
    }


def _metadata(context: ExecutionContext, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": context.namespace,
        "labels": _labels(context),
        "annotations": {EXECUTION_ID_ANNOTATION: context.spec.execution_id},
        "ownerReferences": [_owner(context)],
    }


def _env(context: ExecutionContext, plan: command.Plan) -> list[dict[str, Any]]:
    """The definition's variables, Overseer's, then one per parameter with a value."""
    definition = context.spec.definition
    given = sorted((definition.env or {}).items())
    env: list[dict[str, Any]] = [{"name": n, "value": command.escape(v)} for n, v in given]
    own = {
        "OVERSEER_JOB": definition.name,
        "OVERSEER_EXECUTION": context.spec.execution_id,
        control.ENV_SOCKET: CONTROL_SOCKET,
        "OVERSEER_REPO_BIN": REPO_BIN,
        supervisor_settings.ENV_KILL_AFTER: f"{defn.kill_after_seconds(definition):g}",
    }
    if plan.values:
        own[param.ENV_FILE] = PARAMS_FILE
    env += [{"name": name, "value": command.escape(value)} for name, value in own.items()]
    secret_name = parameters_secret_name(context.name)
    for name, value in sorted(plan.values.items()):
        if name in plan.secret:
            source = {"secretKeyRef": {"name": secret_name, "key": _secret_key(name)}}
            env.append({"name": command.param_env_name(name), "valueFrom": source})
        else:
            env.append({"name": command.param_env_name(name), "value": command.escape(value)})
    if definition.script is not None:
        env.append({"name": SCRIPT_ENV, "value": command.escape(definition.script)})
    return env


def _secret_key(name: str) -> str:
    return f"param.{name}"


def _volumes(
    context: ExecutionContext, plan: command.Plan, *, custom_image: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's volumes and the job container's mounts."""
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": TMP}]
    if context.bundle_name is not None and context.bundle_items:
        items = [
            {"key": item["key"], "path": item["path"], "mode": int(item["mode"])}
            for item in context.bundle_items
        ]
        source: dict[str, Any] = {"name": context.bundle_name, "items": items}
        volumes.append({"name": "repo-bin", "configMap": source})
        mounts.append({"name": "repo-bin", "mountPath": REPO_BIN, "readOnly": True})
    if plan.values:
        secret = {
            "secretName": parameters_secret_name(context.name),
            "items": [{"key": PARAMS_KEY, "path": PARAMS_KEY}],
            "defaultMode": 0o444,
        }
        volumes.append({"name": "params", "secret": secret})
        mounts.append({"name": "params", "mountPath": PARAMS_DIR, "readOnly": True})
    if custom_image:
        volumes.append({"name": "library", "emptyDir": {}})
        mounts.append({"name": "library", "mountPath": LIBRARY_ROOT, "readOnly": True})
    return volumes, mounts


def _resources(definition: defn.JobDefinition) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if definition.resources is not None:
        for part in ("requests", "limits"):
            given = getattr(definition.resources, part)
            if given:
                resources[part] = {key: str(value) for key, value in sorted(given.items())}
    return resources


def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _pod_security(definition: defn.JobDefinition, library_image: str) -> dict[str, Any]:
    ids, problems = accounts.resolve(definition, library_image)
    if ids is None:
        raise errors.DefinitionNotRunnableError(problems)
    return {
        "runAsNonRoot": True,
        "runAsUser": ids.uid,
        "runAsGroup": ids.gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _library_image(container: dict[str, Any], settings: JobSettings) -> dict[str, Any]:
    """A container of the library image: with the configured pull policy."""
    container["image"] = settings.library_image
    if settings.image_pull_policy is not None:
        container["imagePullPolicy"] = settings.image_pull_policy
    return container


def _job_container(
    context: ExecutionContext,
    plan: command.Plan,
    mounts: list[dict[str, Any]],
    settings: JobSettings,
    *,
    custom_image: bool,
) -> dict[str, Any]:
    """The container running the supervisor with the job: in its own image or the library's."""
    definition = context.spec.definition
    container: dict[str, Any] = {
        "name": CONTAINER,
        "command": [command.escape(SUPERVISOR)],
        "args": command.job_args(definition, plan),
        "env": _env(context, plan),
        "volumeMounts": mounts,
        "securityContext": _container_security(),
        "terminationMessagePolicy": "File",
    }
    if custom_image:
        return {"name": CONTAINER, "image": definition.image, **container}
    return _library_image(container, settings)


def _library_copier(settings: JobSettings) -> dict[str, Any]:
    """The init container of a job in its own image, which may lack the supervisor.

    It copies the operator's library into an emptyDir that hides whatever the image has
    at that path (so the job's protocol is the operator's).
    """
    init: dict[str, Any] = {
        "name": INIT_CONTAINER,
        "command": ["cp", "-R", f"{LIBRARY_ROOT}/.", f"{LIBRARY_COPY}/"],
        "volumeMounts": [{"name": "library", "mountPath": LIBRARY_COPY}],
        "securityContext": _container_security(),
    }
    return _library_image(init, settings)


# --- the manifests ---------------------------------------------------------------------


def build_parameters_secret(context: ExecutionContext) -> dict[str, Any] | None:
    """The Secret of an execution's parameters; None when it has none.

    ``params.json`` holds every value (the job's ``$OVERSEER_PARAMS_FILE``) and
    ``param.<name>`` each secret one, for its ``OVERSEER_PARAM_`` variable. Raises
    :class:`overseer.core.errors.ParameterError` for unacceptable parameters.
    """
    plan = context.plan()
    if not plan.values:
        return None
    data = {PARAMS_KEY: json.dumps(plan.values, sort_keys=True, ensure_ascii=False)}
    data.update({_secret_key(n): plan.values[n] for n in sorted(plan.secret)})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(context, parameters_secret_name(context.name)),
        "type": "Opaque",
        "immutable": True,
        "data": {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in data.items()},
    }


def build_execution_job(
    context: ExecutionContext, settings: JobSettings | None = None
) -> dict[str, Any]:
    """The batch/v1 Job running the execution under the supervisor (see the module doc).

    Raises :class:`overseer.core.errors.ParameterError` for unacceptable parameters and
    :class:`overseer.errors.DefinitionNotRunnableError` (naming the field) for what no pod can run.
    """
    settings = settings or JobSettings()
    definition = context.spec.definition
    problems = check_runnable(definition, settings.library_image)
    if problems:
        raise errors.DefinitionNotRunnableError(problems)
    plan = context.plan()
    custom_image = definition.image not in (None, settings.library_image)
    volumes, mounts = _volumes(context, plan, custom_image=custom_image)
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        # Kubernetes' own KILL comes after the supervisor's (killAfter), which says why.
        "terminationGracePeriodSeconds": math.ceil(defn.kill_after_seconds(definition)) + 10,
        "serviceAccountName": settings.service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": _pod_security(definition, settings.library_image),
        "containers": [_job_container(context, plan, mounts, settings, custom_image=custom_image)],
        "volumes": volumes,
    }
    if custom_image:
        pod["initContainers"] = [_library_copier(settings)]
    resources = _resources(definition)
    if resources:
        # The init container gets the same: it never raises the pod's effective request.
        for each in (*pod["containers"], *pod.get("initContainers", ())):
            each["resources"] = resources
    spec: dict[str, Any] = {
        "backoffLimit": definition.retries or 0,
        "template": {"metadata": {"labels": _labels(context)}, "spec": pod},
    }
    if definition.timeout is not None:
        spec["activeDeadlineSeconds"] = max(1, math.ceil(types.timeout_seconds(definition.timeout)))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(context, job_name(context.name)),
        "spec": spec,
    }
