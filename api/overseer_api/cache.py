"""What the API reads: watch caches of jobs, executions and repositories, indexed by name
and id.

One task per kind and namespace follows :meth:`overseer.kube.Kube.watch`; a ``LIST``
replaces that namespace's objects of the kind, each change updates them. Lookups use
the names ``overseer.core.names`` derives, never a scan: a job by its display name
(``job_resource_name``), an execution by its job and id. Jobs are also kept sorted by
display name, for pages that stay stable while jobs come and go.

Every change to a job or to one of its executions (a watch event, a write, a list)
changes the job's :meth:`Cache.stamp`, so what a read derives from a job and its
executions (the JSON of ``GET /jobs/{name}``) is kept under that stamp
(:meth:`Cache.memo`) and derived again only once something changed.

A write the API makes is put in the cache from its response (:meth:`Cache.put`), so a
client that writes then reads sees its write; a watch event older than what the cache
holds (by ``resourceVersion``) does not undo it. The cache is ready once every
(kind, namespace) has had its first full list.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from overseer import errors, kube_watch
from overseer.core import concurrency, names
from overseer.crd import definition as defn
from overseer.crd import execution as execution_
from overseer.crd import job as job_
from overseer.crd import repository as repository_

log = logging.getLogger(__name__)

JOB = job_.KIND.kind
EXECUTION = execution_.KIND.kind
REPOSITORY = repository_.KIND.kind
KINDS = (JOB, EXECUTION, REPOSITORY)
RETRY_MIN = 1.0
RETRY_MAX = 30.0
MAX_DERIVED = 100_000
"""Derived values kept at most (see :meth:`Cache.derived`)."""
T = TypeVar("T")

Body = dict[str, Any]


class WatchSource(Protocol):
    """What the cache needs from :class:`overseer.kube.Kube`."""

    def watch(self, kind: str, namespace: str) -> AsyncIterator[tuple[str, Body]]: ...


def _version(body: Body) -> int | None:
    text = str(body.get("metadata", {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else None


def _newer(new: Body, old: Body | None) -> bool:
    """Whether ``new`` may replace ``old`` (versions are opaque, but numbers in practice)."""
    if old is None:
        return True
    a, b = _version(new), _version(old)
    return a is None or b is None or a >= b


@dataclasses.dataclass
class _Namespace:
    """The objects of one namespace, indexed."""

    jobs: dict[str, Body] = dataclasses.field(default_factory=dict)
    """Job bodies by resource name."""
    by_display: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """(display name, resource name), sorted."""
    executions: dict[str, dict[str, Body]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(dict)
    )
    """Execution bodies by job resource name, then execution id."""
    epoch: int = 0
    """Changes with every full list (a list may drop what a watch gap hid)."""
    touched: dict[str, int] = dataclasses.field(default_factory=dict)
    """By job resource name: when the job or one of its executions last changed."""
    repositories: dict[str, Body] = dataclasses.field(default_factory=dict)
    """Repository bodies by name."""

    def put_job(self, body: Body) -> None:
        name = body["metadata"]["name"]
        old = self.jobs.get(name)
        if not _newer(body, old):
            return
        if old is not None:
            self._unsort(old)
        self.jobs[name] = body
        bisect.insort(self.by_display, (_display(body), name))

    def drop_job(self, body: Body) -> None:
        old = self.jobs.pop(body["metadata"]["name"], None)
        if old is not None:
            self._unsort(old)

    def _unsort(self, body: Body) -> None:
        key = (_display(body), body["metadata"]["name"])
        index = bisect.bisect_left(self.by_display, key)
        if index < len(self.by_display) and self.by_display[index] == key:
            del self.by_display[index]

    def put_execution(self, body: Body) -> None:
        job, eid = _execution_key(body)
        if job and _newer(body, self.executions[job].get(eid)):
            self.executions[job][eid] = body

    def drop_execution(self, body: Body) -> None:
        job, eid = _execution_key(body)
        self.executions.get(job, {}).pop(eid, None)

    def put_repository(self, body: Body) -> None:
        name = body["metadata"]["name"]
        if _newer(body, self.repositories.get(name)):
            self.repositories[name] = body

    def drop(self, kind: str, body: Body) -> None:
        if kind == JOB:
            self.drop_job(body)
        elif kind == EXECUTION:
            self.drop_execution(body)
        elif kind == REPOSITORY:
            self.repositories.pop(body["metadata"]["name"], None)


def _display(body: Body) -> str:
    return str(body.get("spec", {}).get("displayName") or body["metadata"]["name"])


def _execution_key(body: Body) -> tuple[str, str]:
    spec = body.get("spec", {})
    return str(spec.get("job") or ""), str(spec.get("executionId") or "")


class Cache:
    """Watch caches for the served namespaces (see the module's docstring)."""

    def __init__(self, source: WatchSource, namespaces: Sequence[str]) -> None:
        self._source = source
        self.namespaces = tuple(namespaces)
        self._data = {ns: _Namespace() for ns in self.namespaces}
        self._listed: set[tuple[str, str]] = set()
        self._derived: dict[Hashable, tuple[Hashable, Any]] = {}
        self._clock = itertools.count(1)
        self._resources: dict[str, str] = {}
        """Resource names by display name (``names.job_resource_name``, kept)."""
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start one watch task per kind and namespace."""
        for namespace in self.namespaces:
            for kind in KINDS:
                task = asyncio.create_task(
                    self._follow(kind, namespace), name=f"{kind}/{namespace}"
                )
                self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    @property
    def ready(self) -> bool:
        """Every kind in every namespace has had its first full list."""
        return len(self._listed) == len(KINDS) * len(self.namespaces)

    def check_ready(self) -> None:
        """Raise NotReadyError (503) until :attr:`ready`."""
        if not self.ready:
            msg = (
                "the API is starting and has not read every job, execution and repository "
                "yet; retry"
            )
            raise errors.NotReadyError(msg)

    async def _follow(self, kind: str, namespace: str) -> None:
        await kube_watch.keep_following(
            lambda: self._source.watch(kind, namespace),
            lambda event, body: self.apply(kind, namespace, event, body),
            f"{kind} in {namespace}",
            retry=(RETRY_MIN, RETRY_MAX),
        )

    # --- updates ---------------------------------------------------------------------

    def apply(self, kind: str, namespace: str, event: str, body: Body) -> None:
        """Take one watch event (``LIST`` replaces the namespace's objects of ``kind``)."""
        data = self._data.get(namespace)
        if data is None:
            return
        if event == "LIST":
            # The other kinds' objects are kept; the stamps all change (the epoch).
            fresh = dataclasses.replace(data, epoch=next(self._clock), touched={})
            if kind == JOB:
                fresh.jobs, fresh.by_display = {}, []
            elif kind == EXECUTION:
                fresh.executions = collections.defaultdict(dict)
            else:
                fresh.repositories = {}
            for item in body.get("items") or ():
                self._put(fresh, kind, item)
            self._data[namespace] = fresh
            self._listed.add((kind, namespace))
        elif event == "DELETED":
            data.drop(kind, body)
            self._touch(data, kind, body)
        else:
            self._put(data, kind, body)
            self._touch(data, kind, body)

    def put(self, body: Body) -> None:
        """Take an object the API wrote (from the write's response)."""
        data = self._data.get(str(body.get("metadata", {}).get("namespace")))
        if data is not None:
            self._put(data, str(body.get("kind")), body)
            self._touch(data, str(body.get("kind")), body)

    def _touch(self, data: _Namespace, kind: str, body: Body) -> None:
        if kind == REPOSITORY:
            return  # no job's answer shows its repository's status
        job = body["metadata"]["name"] if kind == JOB else _execution_key(body)[0]
        data.touched[job] = next(self._clock)

    @staticmethod
    def _put(data: _Namespace, kind: str, body: Body) -> None:
        if kind == JOB:
            data.put_job(body)
        elif kind == EXECUTION:
            data.put_execution(body)
        elif kind == REPOSITORY:
            data.put_repository(body)

    # --- reads -----------------------------------------------------------------------

    def _namespace(self, namespace: str) -> _Namespace:
        data = self._data.get(namespace)
        if data is None:
            served = ", ".join(self.namespaces)
            msg = f"namespace {namespace!r} is not served by this API; it serves {served}"
            raise errors.NamespaceNotServedError(msg)
        return data

    def job(self, namespace: str, display_name: str) -> Body:
        """The job with this display name; JobNotFoundError when there is none."""
        resource = self._resources.get(display_name) or names.job_resource_name(display_name)
        body = self._namespace(namespace).jobs.get(resource)
        if body is None or _display(body) != display_name:
            msg = f"no job is named {display_name!r} in {namespace!r}; GET /jobs lists them"
            raise errors.JobNotFoundError(msg)
        if display_name not in self._resources:
            # Only names of jobs found: a client asking for random names cannot grow it.
            if len(self._resources) > MAX_DERIVED:
                self._resources.clear()
            self._resources[display_name] = resource
        return body

    def jobs_after(self, namespace: str, after: str | None) -> Iterator[Body]:
        """Jobs in display-name order, from just after the display name ``after``."""
        data = self._namespace(namespace)
        start = 0 if after is None else bisect.bisect_right(data.by_display, (after, "\uffff"))
        for _, name in data.by_display[start:]:
            body = data.jobs.get(name)
            if body is not None:
                yield body

    def derived(self, body: Mapping[str, Any], compute: Callable[[Mapping[str, Any]], T]) -> T:
        """``compute(body)``, computed once per version of the object (a job's parameters,
        say): what a read derives from a resource costs nothing the second time."""
        meta = body["metadata"]
        version = str(meta.get("resourceVersion") or "")
        key = ("derived", str(meta.get("namespace")), str(meta["name"]))
        if not version:
            return compute(body)
        return self.memo(key, version, lambda: compute(body))

    def stamp(self, namespace: str, job: str) -> tuple[int, int]:
        """A value that changes whenever the job (resource name ``job``) or any of its
        executions changes, or the namespace is listed again."""
        data = self._namespace(namespace)
        return data.epoch, data.touched.get(job, 0)

    def memo(self, key: Hashable, version: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, kept under ``key`` until asked with another ``version``: one value
        per key (the latest version), at most ``MAX_DERIVED`` keys."""
        found = self._derived.get(key)
        if found is not None and found[0] == version:
            value: T = found[1]
            return value
        value = compute()
        if len(self._derived) > MAX_DERIVED:
            self._derived.clear()  # jobs come and go; never let old versions pile up
        self._derived[key] = (version, value)
        return value

    def display_name(self, namespace: str, job: str) -> str:
        """The display name of the job with resource name ``job`` (itself once deleted)."""
        body = self._namespace(namespace).jobs.get(job)
        return job if body is None else _display(body)

    def all_executions(self, namespace: str) -> Iterator[Body]:
        """Every execution of the namespace, in no particular order."""
        for executions in self._namespace(namespace).executions.values():
            yield from executions.values()

    def executions_of(self, namespace: str, job: str) -> dict[str, Body]:
        """A job's executions by id (``job`` is its resource name)."""
        return self._namespace(namespace).executions.get(job, {})

    def execution(self, namespace: str, job: str, execution_id: str) -> Body:
        """One execution; ExecutionNotFoundError when the job has none with this id."""
        body = self.executions_of(namespace, job).get(execution_id)
        if body is None:
            msg = f"the job has no execution {execution_id!r}; GET the job to see its executions"
            raise errors.ExecutionNotFoundError(msg)
        return body

    def scope_executions(
        self, namespace: str, job: str, limit: defn.Concurrency | None
    ) -> list[Body]:
        """The executions sharing a concurrency limit with ``job``'s: its own, or every
        execution whose definition names the same group."""
        data = self._namespace(namespace)
        if limit is None or not limit.group:
            return list(data.executions.get(job, {}).values())
        scope = concurrency.scope_of({"definition": {"concurrency": {"group": limit.group}}})
        return [
            body
            for executions in data.executions.values()
            for body in executions.values()
            if concurrency.scope_of(body.get("spec") or {}) == scope
        ]

    def repository(self, namespace: str, name: str) -> Body:
        """One repository; RepositoryUnknownError when the namespace has none by this name."""
        body = self._namespace(namespace).repositories.get(name)
        if body is None:
            msg = f"no repository is named {name!r} in {namespace!r}; GET /repositories lists them"
            raise errors.RepositoryUnknownError(msg)
        return body

    def repositories(self, namespace: str) -> list[Body]:
        """The namespace's repositories, by name."""
        found = self._namespace(namespace).repositories
        return [found[name] for name in sorted(found)]

    def sizes(self) -> dict[tuple[str, str], int]:
        """Objects held per (kind, namespace), for /metrics."""
        sizes = {}
        for namespace, data in self._data.items():
            sizes[(JOB, namespace)] = len(data.jobs)
            sizes[(EXECUTION, namespace)] = sum(len(e) for e in data.executions.values())
            sizes[(REPOSITORY, namespace)] = len(data.repositories)
        return sizes
