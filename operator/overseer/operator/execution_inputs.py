"""What an execution reads before it starts: its ``bin/`` bundle, and whether its job is active.

Reads only: :mod:`overseer.operator.executions` creates the Job with the bundle found
here, or refuses the execution with the message given here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from overseer import errors, kube_client
from overseer.core import bundle
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
