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
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic

from overseer import errors, git, kube_client
from overseer.core import backoff, definitions, field_errors, git_source, repository_sync, sync
from overseer.crd import repository as repository_crd
from overseer.crd import types
from overseer.operator import events, parse_cache, repository_writes, write_gate
from overseer.operator.settings import Settings

log = logging.getLogger(__name__)

SUSPENDED_RECHECK = 3600.0
"""Seconds between two looks at a suspended repository (a spec change wakes it sooner)."""


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
    body: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The whole object, which Events are posted on."""
    sync_request: str | None = None
    """Its requested-sync annotation as the pass starts: the status echoes it."""


async def run_once(
    repo: Repository,
    index: repository_sync.JobIndex,
    *,
    client: kube_client.KubeClient,
    settings: Settings,
    failures: int,
    cache: parse_cache.ParseCache,
    gate: write_gate.WriteGate | None = None,
) -> Outcome:
    """One pass of the repository's daemon: say it is suspended, or sync it.

    ``index`` holds the OverseerJobs of every repository, by (namespace, repository).
    """
    if repo.spec.get("suspend"):
        await report_suspended(repo, client)
        return Outcome(SUSPENDED_RECHECK)
    existing = {job.metadata["name"]: job for job in index.get((repo.namespace, repo.name), ())}
    return await sync_repository(
        repo,
        existing_jobs=existing,
        claims=repository_sync.build_claims(index, repo.namespace, repo.name),
        client=client,
        settings=settings,
        post_event=events.post_event,
        failures=failures,
        cache=cache,
        gate=gate,
    )


@dataclasses.dataclass
class _Pass:
    """One sync, carried from step to step; each step fills in what the next reads."""

    repo: Repository
    existing_jobs: Mapping[str, sync.ExistingObject]
    client: kube_client.KubeClient
    settings: Settings
    post_event: events.EventPoster
    failures: int
    cache: parse_cache.ParseCache
    writes_before: int
    claims: repository_sync.Claims = dataclasses.field(default_factory=dict)
    gate: write_gate.WriteGate | None = None
    interval: float = 0.0
    revision: git.Revision | None = None
    result: definitions.RepositoryResult | None = None
    plan: sync.Plan | None = None
    job_count: int = 0
    inactive: list[str] = dataclasses.field(default_factory=list)
    """The job names kept deactivated (status.inactiveJobs), see repository_sync."""

    @property
    def writes(self) -> int:
        return sum(self.client.writes.values()) - self.writes_before

    async def failed(self, error: errors.OverseerError, stalled_delay: float) -> Outcome:
        """Report the error on the repository; the next sync is due after a backoff."""
        delay = stalled_delay if error.stalled else _retry_delay(self.settings, self.failures)
        await _report_failure(self.repo, error, delay, self.client, self.post_event)
        commit = self.revision.commit if self.revision else None
        return Outcome(delay, commit, self.writes, error)


async def sync_repository(
    repo: Repository,
    *,
    existing_jobs: Mapping[str, sync.ExistingObject],
    client: kube_client.KubeClient,
    settings: Settings,
    post_event: events.EventPoster,
    failures: int = 0,
    cache: parse_cache.ParseCache | None = None,
    claims: repository_sync.Claims | None = None,
    gate: write_gate.WriteGate | None = None,
) -> Outcome:
    """Run one sync; ``failures`` counts the temporary failures just before it (for backoff).

    ``claims``: the jobs other repositories of the namespace own (they keep them);
    ``gate``: bounds the writes in flight with the other syncs' and the scheduler's. The
    steps run in order; a step that returns an outcome ends the sync there.
    """
    state = _Pass(
        repo,
        existing_jobs,
        client,
        settings,
        post_event,
        failures,
        cache or parse_cache.ParseCache(),
        writes_before=sum(client.writes.values()),
        claims=claims or {},
        gate=gate,
    )
    for step in (_fetch, _plan):
        if (outcome := await step(state)) is not None:
            return outcome
    plan = state.plan
    assert plan is not None, "_plan returned no outcome"
    # A large sync's writes go first, its status too; the scheduler's wait (write_gate).
    async with write_gate.holding(state.gate, len(plan.create + plan.update) + len(plan.delete)):
        return await _apply(state) or await _record(state)


async def _fetch(state: _Pass) -> Outcome | None:
    """Read the spec and its Secret, and fetch the commit the ref points at."""
    try:
        spec = _read_spec(state.repo)
        state.interval = types.parse_duration(spec.interval).total_seconds()
        credentials = await _read_credentials(state.repo, spec, state.client)
        source = git.Source(
            url=spec.url,
            ref=spec.ref,
            path=spec.path or "",
            allow_insecure_http=spec.allow_insecure_http,
        )
        state.revision = await asyncio.to_thread(
            git.fetch_revision,
            source,
            credentials,
            state.settings.cache_dir,
            owner=state.repo.uid,
            allow_file_urls=state.settings.git_allow_file_urls,
            timeout=state.settings.git_timeout,
            limits=state.settings.repository_limits,
        )
    except errors.OverseerError as error:
        return await state.failed(error, _interval_or(state.repo, 60.0))
    return None


async def _plan(state: _Pass) -> Outcome | None:
    """Parse the job files and plan the writes that make the jobs match them."""
    assert state.revision is not None
    # Parsing thousands of jobs takes seconds of CPU: keep it off the event loop,
    # where it would stall every watch and handler of the operator.
    parsed = await asyncio.to_thread(
        state.cache.parse_repository,
        dict(state.revision.job_files),
        state.revision.defaults,
        state.revision.too_large,
        state.settings.repository_max_file_size,
    )
    state.result = repository_sync.exclude_claimed(parsed, state.claims)
    repo = state.repo
    owner = repository_sync.Owner(repo.namespace, repo.name, repo.uid)
    desired = repository_sync.build_desired_jobs(owner, state.revision.commit, state.result)
    state.plan = sync.plan_sync(desired, state.result.failed_files, state.existing_jobs)
    state.job_count = len(desired) + len(state.plan.kept_because_file_failed)
    state.inactive = repository_sync.plan_inactive(
        repo.status.get("inactiveJobs") or (), state.existing_jobs
    )
    return None


async def _apply(state: _Pass) -> Outcome | None:
    """Write the planned jobs, then the commit's bin/ bundle when the commit is new."""
    assert state.revision is not None and state.plan is not None
    repo = state.repo
    try:
        try:
            await repository_writes.carry_out(
                state.plan,
                repo.namespace,
                state.client,
                frozenset(state.inactive),
                concurrency=state.settings.sync_write_concurrency,
                gate=state.gate,
            )
        except* errors.OverseerError as group:
            raise group.exceptions[0] from None
        if state.revision.commit != repo.status.get("commit") or not repo.status.get("commit"):
            await repository_writes.publish_bundle(
                (repo.namespace, repo.name, repo.uid),
                state.revision,
                state.client,
                state.settings.kept_bundles,
            )
    except errors.OverseerError as error:
        return await state.failed(error, state.interval)
    return None


async def _record(state: _Pass) -> Outcome:
    """Write the status, post an Event per new definition error, log what was done."""
    assert state.revision is not None and state.result is not None and state.plan is not None
    repo, result, plan, commit = state.repo, state.result, state.plan, state.revision.commit
    old_errors = repo.status.get("errors") or []
    status, changed = repository_sync.build_status(
        previous=repo.status,
        generation=repo.generation,
        commit=commit,
        job_count=state.job_count,
        errors=result.errors,
        fetch_error=None,
        now=datetime.now(UTC),
        inactive_jobs=state.inactive,
        handled_request=repo.sync_request,
    )
    if changed:
        await state.client.patch_status(repository_crd.KIND.kind, repo.namespace, repo.name, status)
    if result.errors and status.get("errors") != old_errors:
        for error_ in result.errors:
            where = ":".join(str(p) for p in (error_.file, error_.line) if p)
            job = f" job {error_.job!r}" if error_.job else ""
            field = f" field {error_.field}" if error_.field else ""
            message = f"{where}{job}{field}: {error_.message}"
            reason = error_.reason or "InvalidDefinition"
            state.post_event(repo.body, "Warning", reason, message)
    if not plan.is_noop:
        log.info(
            "synced %s/%s at %s: %d created, %d updated, %d deleted, %d kept (file failed)",
            repo.namespace,
            repo.name,
            commit[:12],
            len(plan.create),
            len(plan.update),
            len(plan.delete),
            len(plan.kept_because_file_failed),
        )
    log.info(
        "sync of %s/%s at %s done with %d API writes",
        repo.namespace,
        repo.name,
        commit[:12],
        state.writes,
    )
    return Outcome(state.interval, commit, state.writes)


_removals: set[asyncio.Task[None]] = set()
"""Mirror removals under way: asyncio keeps only weak references to tasks."""


async def forget(uid: str, settings: Settings) -> None:
    """A deleted repository's mirrors go: a repository created again starts afresh.

    kopf cancels the sync daemon that calls this when it does not exit at once; the
    removal is a task of its own, shielded, so that a cancellation never skips it (a
    cancelled ``to_thread`` drops its work if no thread has picked it up yet).
    """
    removal = asyncio.ensure_future(_remove_mirrors(uid, settings))
    _removals.add(removal)
    removal.add_done_callback(_removals.discard)
    await asyncio.shield(removal)


async def _remove_mirrors(uid: str, settings: Settings) -> None:
    try:
        await asyncio.to_thread(git.remove_mirrors, settings.cache_dir, uid)
    except OSError as error:  # the cache is only a cache: a restart empties it anyway
        log.warning("could not remove the mirrors of repository %s: %s", uid, error)


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
        handled_request=repo.sync_request,
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
    secret = await client.read_labelled_secret(repo.namespace, spec.secret_ref.name)
    git_source.check_marked(spec.secret_ref.name, repo.namespace, secret.labels)
    try:
        return git.Credentials.from_secret_data(secret.data)
    except errors.OverseerError:
        raise
    except ValueError as error:
        raise errors.InvalidSpecError(f"Secret {spec.secret_ref.name}: {error}") from None


async def _report_failure(
    repo: Repository,
    error: errors.OverseerError,
    delay: float,
    client: kube_client.KubeClient,
    post_event: events.EventPoster,
) -> None:
    status, changed = repository_sync.build_status(
        previous=repo.status,
        generation=repo.generation,
        commit=None,
        job_count=None,
        errors=[],
        fetch_error=(error.reason, error.message),
        now=datetime.now(UTC),
        handled_request=repo.sync_request,
    )
    if error.stalled:
        next_step = f"stalled until the input changes; looking again in {delay:.0f}s"
    else:
        next_step = f"retrying in {delay:.0f}s"
    log.warning(
        "sync of %s/%s failed (%s): %s", repo.namespace, repo.name, next_step, error.message
    )
    if changed:
        post_event(repo.body, "Warning", error.reason, error.message)
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
