"""The repository sync: git commit in, OverseerJobs and the ``bin/`` bundle out.

One sync is a short ordered list of steps (read spec, credentials, fetch, parse,
plan, apply, bundle, status). Each step either moves on or raises an
:class:`overseer.errors.OverseerError` whose policy decides what happens next:
a stalled error is reported and waits for the next interval (a new commit or a
new spec); a waiting error is reported and retried with backoff.

A sync that finds nothing changed makes no API write at all: the plan is
empty, the bundle is only written when the commit moves, and the status is
only patched when it differs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic

from overseer import errors, git, kube_client
from overseer.core import backoff, bundle, definitions, field_errors, repository_sync, sync
from overseer.crd import base, definition, types
from overseer.crd import execution as execution_crd
from overseer.crd import job as job_crd
from overseer.crd import repository as repository_crd
from overseer.operator.settings import Settings

log = logging.getLogger(__name__)

EventPoster = Callable[[str, str, str], None]
"""Posts a Kubernetes Event on the repository: (type, reason, message)."""


class ParseCache:
    """Parsed job files of one repository, keyed by path, content and defaults.

    A commit usually touches a few files: only those are parsed again. Entries
    not used by the latest sync are dropped, so memory follows the repository.
    """

    def __init__(self) -> None:
        self._results: dict[tuple[str, str, str], definitions.FileResult] = {}
        self._used: set[tuple[str, str, str]] = set()

    def parse_repository(
        self, files: Mapping[str, bytes], defaults_text: bytes | None
    ) -> definitions.RepositoryResult:
        """Blocking and CPU-bound: call it in a thread."""
        self._used = set()
        defaults_key = hashlib.sha256(defaults_text or b"").hexdigest()

        def parse_file(
            path: str, text: str | bytes, defaults: definition.Defaults | None
        ) -> definitions.FileResult:
            data = text.encode() if isinstance(text, str) else text
            key = (path, hashlib.sha256(data).hexdigest(), defaults_key)
            self._used.add(key)
            if key not in self._results:
                self._results[key] = definitions.parse_job_file(path, text, defaults)
            return self._results[key]

        result = definitions.parse_repository(files, defaults_text, parse_file)
        self._results = {k: v for k, v in self._results.items() if k in self._used}
        return result


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a sync did and when the next one is due."""

    delay: float
    commit: str | None = None
    writes: int = 0
    error: errors.OverseerError | None = None


@dataclasses.dataclass(frozen=True)
class Repository:
    """The parts of an OverseerRepository object a sync reads."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]


async def sync_repository(
    repo: Repository,
    *,
    existing_jobs: Mapping[str, sync.ExistingObject],
    client: kube_client.KubeClient,
    settings: Settings,
    post_event: EventPoster,
    failures: int = 0,
    cache: ParseCache | None = None,
) -> Outcome:
    """Run one sync; ``failures`` counts the temporary failures just before it (for backoff)."""
    writes_before = sum(client.writes.values())
    try:
        spec = _read_spec(repo)
        interval = types.parse_duration(spec.interval).total_seconds()
        credentials = await _read_credentials(repo, spec, client)
        source = git.Source(url=spec.url, ref=spec.ref, path=spec.path or "")
        revision = await asyncio.to_thread(
            git.fetch_revision,
            source,
            credentials,
            settings.cache_dir,
            timeout=settings.git_timeout,
        )
    except errors.OverseerError as error:
        delay = _retry_delay(settings, failures) if not error.stalled else _interval_or(repo, 60.0)
        await _report_failure(repo, error, delay, client, post_event)
        return Outcome(delay, writes=sum(client.writes.values()) - writes_before, error=error)

    cache = cache or ParseCache()
    # Parsing thousands of jobs takes seconds of CPU: keep it off the event loop,
    # where it would stall every watch and handler of the operator.
    result = await asyncio.to_thread(
        cache.parse_repository, dict(revision.job_files), revision.defaults
    )
    owner = repository_sync.Owner(repo.namespace, repo.name, repo.uid)
    desired = repository_sync.build_desired_jobs(owner, revision.commit, result)
    plan = sync.plan_sync(desired, result.failed_files, existing_jobs)
    try:
        try:
            await _carry_out(plan, repo.namespace, client)
        except* errors.OverseerError as group:
            raise group.exceptions[0] from None
        if revision.commit != repo.status.get("commit") or not repo.status.get("commit"):
            await _publish_bundle(repo, revision, client)
    except errors.OverseerError as error:
        delay = _retry_delay(settings, failures) if not error.stalled else interval
        await _report_failure(repo, error, delay, client, post_event)
        return Outcome(delay, revision.commit, sum(client.writes.values()) - writes_before, error)

    old_errors = repo.status.get("errors") or []
    status, changed = repository_sync.build_status(
        previous=repo.status,
        generation=repo.generation,
        commit=revision.commit,
        job_count=len(desired) + len(plan.kept_because_file_failed),
        errors=result.errors,
        fetch_error=None,
        now=datetime.now(UTC),
    )
    if changed:
        await client.patch_status(repository_crd.KIND.kind, repo.namespace, repo.name, status)
    if result.errors and status.get("errors") != old_errors:
        for error_ in result.errors:
            where = ":".join(str(p) for p in (error_.file, error_.line) if p)
            job = f" job {error_.job!r}" if error_.job else ""
            field = f" field {error_.field}" if error_.field else ""
            post_event("Warning", "InvalidDefinition", f"{where}{job}{field}: {error_.message}")
    if not plan.is_noop:
        log.info(
            "synced %s/%s at %s: %d created, %d updated, %d deleted, %d kept (file failed)",
            repo.namespace,
            repo.name,
            revision.commit[:12],
            len(plan.create),
            len(plan.update),
            len(plan.delete),
            len(plan.kept_because_file_failed),
        )
    writes = sum(client.writes.values()) - writes_before
    log.info(
        "sync of %s/%s at %s done with %d API writes",
        repo.namespace,
        repo.name,
        revision.commit[:12],
        writes,
    )
    return Outcome(interval, revision.commit, writes)


async def report_suspended(repo: Repository, client: kube_client.KubeClient) -> None:
    """Say on the repository that it is suspended (once: an unchanged status is not written)."""
    status, changed = repository_sync.build_status(
        previous=repo.status,
        generation=repo.generation,
        commit=repo.status.get("commit"),
        job_count=repo.status.get("jobCount"),
        errors=[],
        fetch_error=None,
        now=datetime.now(UTC),
        suspended=True,
    )
    if changed:
        await client.patch_status(repository_crd.KIND.kind, repo.namespace, repo.name, status)


def _read_spec(repo: Repository) -> repository_crd.RepositorySpec:
    try:
        return repository_crd.RepositorySpec.model_validate(dict(repo.spec))
    except pydantic.ValidationError as error:
        raise errors.InvalidSpecError(f"spec is invalid: {field_errors.summarize(error)}") from None


async def _read_credentials(
    repo: Repository, spec: repository_crd.RepositorySpec, client: kube_client.KubeClient
) -> git.Credentials | None:
    if spec.secret_ref is None:
        return None
    data = await client.read_secret(repo.namespace, spec.secret_ref.name)
    try:
        return git.Credentials.from_secret_data(data)
    except errors.OverseerError:
        raise
    except ValueError as error:
        raise errors.InvalidSpecError(f"Secret {spec.secret_ref.name}: {error}") from None


# Writes in flight at once: one at a time leaves the API server idle between
# round trips (10,000 jobs took 71 s); a few keep it busy without flooding
# its priority-and-fairness queues.
WRITE_CONCURRENCY = 8


async def _carry_out(plan: sync.Plan, namespace: str, client: kube_client.KubeClient) -> None:
    limit = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def apply(write: sync.Write) -> None:
        body = dict(write.body)
        body["metadata"] = {**body["metadata"], "namespace": namespace}
        async with limit:
            await client.apply(body)

    async def delete(name: str) -> None:
        async with limit:
            await client.delete(job_crd.KIND.kind, namespace, name)

    # TaskGroup cancels the rest at the first failure, which then reports the sync.
    async with asyncio.TaskGroup() as group:
        for write in plan.writes:
            group.create_task(apply(write))
        for name in plan.delete:
            group.create_task(delete(name))


async def _publish_bundle(
    repo: Repository, revision: git.Revision, client: kube_client.KubeClient
) -> None:
    """Create the immutable bin/ ConfigMap of this commit; remove those no longer used."""
    owner = {
        "apiVersion": base.API_VERSION,
        "kind": repository_crd.KIND.kind,
        "name": repo.name,
        "uid": repo.uid,
    }
    files = [(f.path, f.mode, f.data) for f in revision.bin_files]
    await client.create(
        bundle.build_bundle(repo.name, repo.namespace, revision.commit, files, [owner])
    )
    existing = {}
    async for configmap in client.list(
        "ConfigMap", repo.namespace, {bundle.LABEL_MANAGED_BY: bundle.MANAGER}
    ):
        annotations = configmap["metadata"].get("annotations") or {}
        if annotations.get(bundle.ANNOTATION_REPOSITORY) == repo.name:
            existing[configmap["metadata"]["name"]] = annotations.get(bundle.ANNOTATION_COMMIT, "")
    # An execution that has not ended still mounts (or is about to mount) the bin/ of
    # the commit it froze: keep those bundles, and the newest.
    in_use = {revision.commit}
    async for execution in client.list(execution_crd.KIND.kind, repo.namespace):
        if (execution.get("status") or {}).get("phase") not in execution_crd.TERMINAL_PHASES:
            in_use.add((execution.get("spec") or {}).get("commit", ""))
    for name in bundle.plan_bundle_gc(existing, in_use):
        await client.delete("ConfigMap", repo.namespace, name)


async def _report_failure(
    repo: Repository,
    error: errors.OverseerError,
    delay: float,
    client: kube_client.KubeClient,
    post_event: EventPoster,
) -> None:
    status, changed = repository_sync.build_status(
        previous=repo.status,
        generation=repo.generation,
        commit=None,
        job_count=None,
        errors=[],
        fetch_error=(error.reason, error.message),
        now=datetime.now(UTC),
    )
    if error.stalled:
        next_step = f"stalled until the input changes; looking again in {delay:.0f}s"
    else:
        next_step = f"retrying in {delay:.0f}s"
    log.warning(
        "sync of %s/%s failed (%s): %s", repo.namespace, repo.name, next_step, error.message
    )
    if changed:
        post_event("Warning", error.reason, error.message)
        try:
            await client.patch_status(repository_crd.KIND.kind, repo.namespace, repo.name, status)
        except errors.KubeError as patch_error:
            log.warning(
                "could not report the failure on %s/%s: %s", repo.namespace, repo.name, patch_error
            )


def _retry_delay(settings: Settings, failures: int) -> float:
    return backoff.delay(failures, first=settings.retry_min, ceiling=settings.retry_max)


def _interval_or(repo: Repository, fallback: float) -> float:
    try:
        return types.parse_duration(str(repo.spec.get("interval", "1m"))).total_seconds()
    except ValueError:
        return fallback
