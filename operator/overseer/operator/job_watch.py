"""The operator's watch of OverseerJobs: the syncs' index, the scheduler and the cache.

Not kopf's: kopf handled every OverseerJob (an index and an event handler), and in an
initial sync of 10,000 jobs a third of the operator's CPU went into kopf's handling of
each new job's event; at start kopf held every object, with a worker task each, until
all were indexed (docs/decisions.rst, "OverseerJobs are watched without kopf"). Nothing
here needs what kopf adds (finalizers, progress, retries per object): this is one LIST
then WATCH per watched namespace (or one for the whole cluster) through
:meth:`overseer.kube.Kube.watch`, its snapshot taken page by page (never all 10,000 jobs'
bodies at once: a start's peak, and the RSS it leaves), each event applied to a
:class:`overseer.core.job_index.JobIndex` and handed to ``notice`` (the scheduler and the
reactions' cache).

It runs inside kopf's run, as the other helpers of :class:`overseer.operator.runtime.Runtime`
do: started by the start-up handler, cancelled at clean-up. A watch that fails (the API
server refuses or cannot be reached) starts over with a LIST after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from overseer import kube_client, kube_watch
from overseer.core import job_index
from overseer.crd import job as job_crd

log = logging.getLogger(__name__)

Notice = Callable[[Mapping[str, Any], bool], None]
"""Called with each OverseerJob that changed and whether it was deleted."""


class JobWatch:
    """The OverseerJobs of ``namespaces`` (every namespace when empty), kept in
    :attr:`index`; :attr:`ready` is set once every scope's first LIST is in it."""

    def __init__(
        self,
        client: kube_client.KubeClient,
        namespaces: Sequence[str],
        notice: Notice,
        *,
        retry_min: float,
        retry_max: float,
    ) -> None:
        self.index = job_index.JobIndex()
        self.ready = asyncio.Event()
        self._client = client
        self._scopes: list[str | None] = list(namespaces) or [None]
        self._listed: set[str | None] = set()
        self._notice = notice
        self._retry = (retry_min, retry_max)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start one watch per scope (in the running event loop)."""
        for scope in self._scopes:
            name = f"watch OverseerJobs in {scope or 'every namespace'}"
            self._tasks.append(asyncio.create_task(self._follow(scope), name=name))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _follow(self, scope: str | None) -> None:
        await kube_watch.keep_following(
            lambda: self._client.watch(job_crd.KIND.kind, scope, paged=True),
            lambda event, body: self.take(event, body, scope),
            f"OverseerJobs in {scope or 'every namespace'}",
            retry=self._retry,
        )

    def take(self, event: str, body: Mapping[str, Any], scope: str | None = None) -> None:
        """Apply one watch event to the index and notice what changed."""
        for changed, deleted in self.index.apply(event, body, scope):
            try:
                self._notice(changed, deleted)
            except Exception:  # one job's reaction never stops the watch of all
                log.exception("noticing OverseerJob %s", changed.get("metadata"))
        if event in ("LIST", "LISTED") and not self.ready.is_set():
            self._listed.add(scope)
            if len(self._listed) == len(self._scopes):
                log.info("OverseerJobs listed: %d", self.index.jobs)
                self.ready.set()
