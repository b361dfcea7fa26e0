"""Turn a parsed repository into the OverseerJob objects a sync applies, and its status.

Pure: the operator's sync reaction feeds it what git and the cluster hold and
carries out what it returns.

A job's spec hash leaves out ``source.commit``: a commit that does not touch a
job must not rewrite it (that would make every sync of a busy repository write
every job). ``source.commit`` therefore says at which commit the definition was
last written, which is also the commit whose ``bin/`` a new execution uses only
through the repository's status, never through the job.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from overseer.core import definitions, names, sync
from overseer.crd import base, conditions, repository, types
from overseer.crd import job as job_crd


@dataclasses.dataclass(frozen=True)
class Owner:
    """The OverseerRepository that owns the jobs it defines."""

    namespace: str
    name: str
    uid: str


def build_job(owner: Owner, commit: str, parsed: definitions.ParsedJob) -> dict[str, Any]:
    """The OverseerJob body for one parsed job (without ``spec.active``: the API owns it)."""
    spec = {
        "displayName": parsed.name,
        "definition": base.to_body(parsed.definition),
        "source": {"repository": owner.name, "file": parsed.file, "commit": commit},
    }
    return {
        "apiVersion": base.API_VERSION,
        "kind": job_crd.KIND.kind,
        "metadata": {
            "name": parsed.resource_name,
            "namespace": owner.namespace,
            "labels": {job_crd.REPOSITORY_LABEL: owner.name},
            "ownerReferences": [
                {
                    "apiVersion": base.API_VERSION,
                    "kind": repository.KIND.kind,
                    "name": owner.name,
                    "uid": owner.uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": spec,
    }


def hash_job_spec(spec: Mapping[str, Any]) -> str:
    """The spec hash of a job, independent of the commit it was read at."""
    source = {k: v for k, v in (spec.get("source") or {}).items() if k != "commit"}
    return sync.hash_spec({**spec, "source": source})


def build_desired_jobs(
    owner: Owner, commit: str, result: definitions.RepositoryResult
) -> dict[str, sync.DesiredObject]:
    """Every job the commit defines, keyed by resource name, ready for :func:`sync.plan_sync`."""
    desired = {}
    for name, parsed in result.jobs.items():
        body = build_job(owner, commit, parsed)
        desired[name] = sync.DesiredObject(body, hash_job_spec(body["spec"]), parsed.file)
    return desired


DUPLICATE_JOB_NAME = "DuplicateJobName"

Claims = Mapping[str, tuple[str, str | None]]
"""Job resource names another repository of the namespace holds: (repository, file)."""

JobIndex = Mapping[tuple[str, str], Iterable[sync.ExistingObject]]
"""The OverseerJobs of every repository by (namespace, repository), as the operator's
watch index holds them (each with ``metadata["name"]``)."""


def build_claims(index: JobIndex, namespace: str, repository_name: str) -> Claims:
    """The jobs the other repositories of ``namespace`` own, by resource name."""
    return {
        job.metadata["name"]: (owner, job.source_file)
        for (where, owner), owned in index.items()
        if where == namespace and owner != repository_name
        for job in owned
    }


def exclude_claimed(
    result: definitions.RepositoryResult, claims: Claims
) -> definitions.RepositoryResult:
    """The result without the jobs another repository of the namespace already owns.

    The first repository to define a name keeps it; a file of this repository defining
    it too fails as a unit (its jobs stay as they were, as for any invalid file) with a
    ``DuplicateJobName`` error naming the owner, so neither sync undoes the other.
    """
    errors = list(result.errors)
    failed = set(result.failed_files)
    for parsed in result.jobs.values():
        if parsed.resource_name not in claims:
            continue
        owner, owner_file = claims[parsed.resource_name]
        where = f" (file {owner_file})" if owner_file else ""
        message = (
            f"the job name {parsed.name!r} already belongs to the OverseerRepository "
            f"{owner!r}{where} in this namespace; the first repository to define a name "
            "keeps it: rename the job here, or remove it from one repository"
        )
        errors.append(
            repository.DefinitionError(
                file=parsed.file,
                job=parsed.name,
                field="name",
                line=parsed.line,
                message=message,
                reason=DUPLICATE_JOB_NAME,
            )
        )
        failed.add(parsed.file)
    if len(errors) == len(result.errors):
        return result
    jobs = {name: job for name, job in result.jobs.items() if job.file not in failed}
    ordered = sorted(errors, key=lambda e: (e.file, e.line or 0, e.job or "", e.message))
    return definitions.RepositoryResult(jobs, tuple(ordered), frozenset(failed))


def plan_inactive(
    previous: Sequence[str], existing: Mapping[str, sync.ExistingObject]
) -> list[str]:
    """The job names the repository keeps deactivated after this sync (sorted).

    The existing jobs whose ``spec.active`` is false, and the names kept before whose
    job no longer exists (it left git while deactivated; it comes back deactivated). A
    job that exists and is active again is dropped: someone activated it.
    """
    kept = {n for n in previous if names.job_resource_name(n) not in existing}
    kept |= {e.display_name for e in existing.values() if not e.active and e.display_name}
    return sorted(kept)


def build_creation(write: sync.Write, inactive: Collection[str]) -> dict[str, Any] | None:
    """The body to create instead of applying, for a job coming back deactivated.

    ``spec.active: false`` goes in the creation itself (never a window in which the
    scheduler sees it active); created, not applied, so the sync's field manager never
    owns ``spec.active`` and a later apply without it leaves it alone. None for a job
    that is not kept deactivated: it is applied as usual.
    """
    spec = write.body.get("spec") or {}
    if spec.get("displayName") not in inactive:
        return None
    body = copy.deepcopy(write.body)
    body["spec"]["active"] = False
    return body


def build_status(
    *,
    previous: Mapping[str, Any],
    generation: int | None,
    commit: str | None,
    job_count: int | None,
    errors: Sequence[repository.DefinitionError],
    fetch_error: tuple[str, str] | None,
    now: datetime,
    suspended: bool = False,
    inactive_jobs: Sequence[str] | None = None,
    handled_request: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """The repository's new status, and whether it differs from ``previous``.

    ``fetch_error`` is (reason, message) when git failed; ``inactive_jobs`` (from
    :func:`plan_inactive`) replaces the kept deactivations when given;
    ``handled_request``, the requested-sync annotation the sync started after, is echoed
    when it fits (a requested sync that changes nothing still changes the status, once).

    Ready is True when the jobs match the commit, with no definition error; Synced
    says whether the last fetch worked. Unchanged conditions keep their transition
    times and ``lastSyncTime`` only moves when something else changed, so a sync
    that changes nothing yields an unchanged status, and the caller writes nothing.
    """
    status = repository.RepositoryStatus.model_validate(previous or {})
    conds = list(status.conditions)
    verdicts = _verdicts(
        commit=commit,
        job_count=job_count,
        errors=errors,
        fetch_error=fetch_error,
        suspended=suspended,
    )
    for type_, ok, reason, message in verdicts:
        conds = conditions.set_condition(
            conds,
            type_,
            "True" if ok else "False",
            reason,
            message,
            now=now,
            observed_generation=generation,
        )
    update: dict[str, Any] = {"observed_generation": generation}
    if inactive_jobs is not None:
        update["inactive_jobs"] = list(inactive_jobs)
    if handled_request is not None and len(handled_request) <= repository.MAX_HANDLED_SYNC_REQUEST:
        update["last_handled_sync_request"] = handled_request
    if not suspended and fetch_error is None:
        update |= {"commit": commit, "job_count": job_count, "errors": list(errors)}
    update["conditions"] = conds
    old_body = base.to_body(status)
    new_body = base.to_body(
        repository.RepositoryStatus.model_validate(base.to_body(status.model_copy(update=update)))
    )
    changed = _without_time(new_body) != _without_time(old_body)
    if changed:
        new_body["lastSyncTime"] = types.rfc3339(now)
    return new_body, changed


def _verdicts(
    *,
    commit: str | None,
    job_count: int | None,
    errors: Sequence[repository.DefinitionError],
    fetch_error: tuple[str, str] | None,
    suspended: bool,
) -> list[tuple[str, bool, str, str]]:
    """The conditions the sync's outcome sets, in order: (type, ok, reason, message)."""
    if suspended:
        return [
            (
                conditions.READY,
                False,
                conditions.SUSPENDED,
                "spec.suspend is true: no sync until it is false; jobs stay as last synced",
            )
        ]
    if fetch_error is not None:
        reason, message = fetch_error
        return [
            (conditions.SYNCED, False, reason, message),
            (conditions.READY, False, reason, f"jobs may be out of date: {message}"),
        ]
    fetched = (conditions.SYNCED, True, "Fetched", f"fetched commit {commit}")
    if not errors:
        return [
            fetched,
            (conditions.READY, True, "Synced", f"{job_count} job(s) in sync with {commit}"),
        ]
    files = ", ".join(sorted({e.file for e in errors}))
    return [
        fetched,
        (
            conditions.READY,
            False,
            conditions.INVALID_DEFINITIONS,
            f"{len(errors)} error(s) in {files}; the jobs these files defined before "
            "are kept as they were until a commit fixes them",
        ),
    ]


def _without_time(status: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k != "lastSyncTime"}
