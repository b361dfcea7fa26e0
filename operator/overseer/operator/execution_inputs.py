"""What an execution reads before it starts: its ``bin/`` bundle, the values of its
secret parameters, and whether its job is active.

Reads only: :func:`prepare` builds the objects :mod:`overseer.operator.executions`
creates (the parameters Secret and the Job) from what it read, or says why the
execution is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pydantic

from overseer import errors, kube_client
from overseer.core import bundle, execution_job, execution_resource, field_errors
from overseer.crd import execution as execution_
from overseer.crd import job as job_crd
from overseer.crd import repository as repository_crd


async def read_bundle(body: Mapping[str, Any], client: kube_client.KubeClient) -> dict[str, Any]:
    """The ``bin/`` ConfigMap of the execution's repository and commit.

    Found by its commit label, so that an execution of a job deleted from git since
    finds it too. Raises :class:`errors.BinNotKeptError` when there is none: the sync keeps the
    newest commit's bundle and those of executions that have not ended, and running
    without the ``bin/`` the job was written for would fail in confusing ways.
    """
    namespace = body["metadata"]["namespace"]
    spec = body.get("spec") or {}
    commit = str(spec.get("commit", ""))
    job = await client.get(job_crd.KIND.kind, namespace, str(spec.get("job", "")))
    repository = job["spec"]["source"]["repository"] if job is not None else None
    labels = {
        bundle.LABEL_MANAGED_BY: bundle.MANAGER,
        bundle.LABEL_COMMIT: bundle.label_value(commit),
    }
    async for configmap in client.list("ConfigMap", namespace, labels):
        annotations = configmap["metadata"].get("annotations") or {}
        if annotations.get(bundle.ANNOTATION_COMMIT) != commit:
            continue
        if repository is None or annotations.get(bundle.ANNOTATION_REPOSITORY) == repository:
            return configmap
    where = f"repository {repository}" if repository else "its repository"
    raise errors.BinNotKeptError(
        f"the bin/ of {where} at commit {commit[:12]} is no longer kept (the synced "
        "commit's is, those of executions that have not ended, and those of the most "
        "recent ended ones up to OVERSEER_KEPT_BUNDLES); create the execution again "
        "with the commit in the OverseerRepository's status.commit"
    )


class Prepared(NamedTuple):
    """The objects to create, in order, or the (reason, message) of a refusal."""

    objects: list[dict[str, Any]]
    refusal: tuple[str, str] | None = None


async def prepare(
    body: Mapping[str, Any], client: kube_client.KubeClient, settings: execution_job.JobSettings
) -> Prepared:
    """The execution's parameters Secret (if any) and Job, or why it cannot run.

    A refusal's message names parameters, never a secret value (scrubbed besides).
    Raises :class:`errors.KubeError` (waiting) when a read fails.
    """
    values: dict[str, str] = {}
    try:
        values = await read_secret_values(body, client)
        context = execution_job.ExecutionContext.from_body(
            body, await read_bundle(body, client), values
        )
        secret = execution_job.build_parameters_secret(context)
        job = execution_job.build_execution_job(context, settings)
    except errors.ParameterError as error:
        reason, message = execution_.INVALID_PARAMETERS, f"parameters: {error}"
    except errors.DefinitionNotRunnableError as error:
        reason, message = execution_.NOT_RUNNABLE, f"the definition cannot run: {error}"
    except errors.SecretParametersError as error:
        reason, message = execution_.SECRET_PARAMETERS_UNAVAILABLE, error.message
    except errors.BinNotKeptError as error:
        reason, message = execution_.BIN_NOT_KEPT, str(error)
    except pydantic.ValidationError as error:
        reason = execution_.INVALID_SPEC
        message = f"spec is invalid: {field_errors.summarize(error)}"
    else:
        return Prepared([o for o in (secret, job) if o is not None])
    return Prepared([], (reason, errors.scrub(message, values.values())))


SECRET_GRACE = timedelta(seconds=60)
"""How long after its creation an execution waits for its secret parameters' Secret (the
API creates it right after the execution) before it fails for want of it."""
SECRET_POLLS = 10
SECRET_POLL_DELAY = 0.2


async def read_secret_values(
    body: Mapping[str, Any], client: kube_client.KubeClient, *, now: datetime | None = None
) -> dict[str, str]:
    """The values of the execution's ``spec.secretParameters`` (empty without one).

    The API creates the Secret just after the execution, so one not there yet is looked
    for a few times over two seconds, then retried (:class:`errors.SecretParametersPendingError`,
    a waiting error) until :data:`SECRET_GRACE` after the execution's creation; after
    that, and for a Secret not the execution's own or lacking a value,
    :class:`errors.SecretParametersError`. Values are never logged nor quoted.
    """
    reference = (body.get("spec") or {}).get("secretParameters")
    if not isinstance(reference, Mapping):
        return {}
    namespace = body["metadata"]["namespace"]
    name = str(reference.get("secretName", ""))
    secret = None
    for poll in range(SECRET_POLLS):
        secret = await client.get("Secret", namespace, name)
        if secret is not None:
            break
        if poll + 1 < SECRET_POLLS:
            await asyncio.sleep(SECRET_POLL_DELAY)
    created = _time((body["metadata"]).get("creationTimestamp"))
    if secret is None and created and (now or datetime.now(UTC)) - created < SECRET_GRACE:
        raise errors.SecretParametersPendingError(
            f"the Secret {name} of the execution's secret parameters is not there yet: "
            "looking again"
        )
    return execution_resource.read_secret_parameters(body, secret)


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


async def inactive_message(body: Mapping[str, Any], client: kube_client.KubeClient) -> str | None:
    """Why the execution's job is deactivated, or None while it is active.

    Deactivated: ``spec.active`` of its OverseerJob is false, or, once the job has left
    git, the repository lists it in ``status.inactiveJobs``.
    """
    namespace = body["metadata"]["namespace"]
    spec = body.get("spec") or {}
    job_name = str(spec.get("job", ""))
    display = str((spec.get("definition") or {}).get("name", job_name))
    job = await client.get(job_crd.KIND.kind, namespace, job_name)
    if job is not None:
        if (job.get("spec") or {}).get("active", True) is not False:
            return None
        where = f"OverseerJob {job_name} has spec.active false"
    else:
        repository = await _repository_keeping_inactive(client, namespace, display)
        if repository is None:
            return None
        where = f"OverseerRepository {repository} lists it in status.inactiveJobs"
    return (
        f"the job {display!r} is deactivated ({where}); activate it again "
        "(PUT /jobs/{name}) to run it"
    )


async def _repository_keeping_inactive(
    client: kube_client.KubeClient, namespace: str, display_name: str
) -> str | None:
    """The repository that keeps ``display_name`` deactivated while it is out of git."""
    async for repository in client.list(repository_crd.KIND.kind, namespace):
        if display_name in ((repository.get("status") or {}).get("inactiveJobs") or ()):
            return str(repository["metadata"]["name"])
    return None
