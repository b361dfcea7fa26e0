"""Follow each running execution's pod log: archive its output, carry its events to the status.

For an execution whose job container has started (running or terminated) and whose log
is not read to its end yet, a task streams the container log (:meth:`Kube.follow_log`),
decodes the supervisor's frames (``overseer_library.protocol``), appends ``out`` frames to
the archive (:mod:`overseer.archive`) and keeps the other frames (start, events, exit...)
for :func:`overseer.operator.executions.observe_execution`, which it calls whenever new
ones arrive: that is how custom ``event`` frames become status events. It ends when the
``exit`` frame is read, or when the stream ends and the container has terminated (or the
pod is gone); the archive then records that the log was read to its end.

The tasks live in this process's memory (no kopf daemon: it would put a finalizer on
every execution, see ``docs/decisions.rst``). After a restart, kopf resumes every
execution and lists its pods; the first observation starts the follower again, which
re-reads the log from its start and skips, by ``seq``, what the archive already holds.
The Exit frame decides nothing here: the outcome is the pod's exit code, as derived by
:mod:`overseer.core.execution_phase`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from overseer import archive as archive_
from overseer import kube
from overseer.core import execution_job
from overseer.crd import execution as execution_
from overseer.operator import executions
from overseer_library import protocol

log = logging.getLogger(__name__)

COMMIT_INTERVAL = 1.0
"""Seconds between two records of the archive's state while output flows."""


def container_started(pod: Mapping[str, Any] | None) -> bool:
    """The job's container is running or has terminated: it has a log to read."""
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or ():
        if status.get("name") == execution_job.CONTAINER:
            state = status.get("state") or {}
            return "running" in state or "terminated" in state
    return False


def container_terminated(pod: Mapping[str, Any] | None) -> bool:
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or ():
        if status.get("name") == execution_job.CONTAINER:
            return "terminated" in (status.get("state") or {})
    return False


class Followers:
    """One log follower task per execution, and the frames each has read so far."""

    def __init__(self, archive: archive_.Archive, *, retry_min: float, retry_max: float) -> None:
        self._archive = archive
        self._retry = (retry_min, retry_max)
        self._tasks: dict[executions.Key, asyncio.Task[None]] = {}
        self._frames: dict[executions.Key, tuple[str, dict[int, protocol.Frame]]] = {}
        self._unarchived: set[executions.Key] = set()

    def frames(self, key: executions.Key, pod: str | None) -> Sequence[protocol.Record]:
        pod_name, frames = self._frames.get(key, ("", {}))
        if pod is None or pod != pod_name:
            return ()
        return [frames[seq] for seq in sorted(frames)]

    def archive(self, key: executions.Key) -> execution_.Archive | None:
        if key not in self._frames or key in self._unarchived:
            return None
        location = self._archive.location(key.namespace, key.name)
        return execution_.Archive(backend=self._archive.backend, location=location)

    def settled(self, key: executions.Key, pod: str | None, gone: bool) -> bool:
        if key in self._unarchived:
            return False  # the pod's log is the only copy of the output
        try:
            if pod is not None and self._archive.finished_pod(key.namespace, key.name) == pod:
                return True
        except archive_.ArchiveError as error:
            log.warning("execution %s: %s", key, error.message)
            return False
        return pod is None or gone

    def remove(self, key: executions.Key) -> None:
        self._archive.remove(key.namespace, key.name)

    def notice(
        self, key: executions.Key, pod: Mapping[str, Any] | None, env: executions.Environment
    ) -> None:
        if not container_started(pod):
            return
        assert pod is not None
        running = self._tasks.get(key)
        if running is not None and not running.done():
            return  # a follower of this (or an older) pod runs; the next event tells again
        name = str(pod["metadata"]["name"])
        task = asyncio.create_task(self._follow(key, name, env), name=f"follow {key}")
        self._tasks[key] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get(key) is done:
                del self._tasks[key]
            if not done.cancelled() and (error := done.exception()) is not None:
                # A bug: say so; the next observation of the execution starts it again.
                log.error("execution %s: following its log failed", key, exc_info=error)

        task.add_done_callback(forget)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, key: executions.Key, pod: str, env: executions.Environment) -> None:
        writer: archive_.Writer
        try:
            writer = self._archive.open(key.namespace, key.name)
        except archive_.ArchiveError as error:
            # Events still reach the status; the output is lost.
            log.error("execution %s: %s; its output is not archived", key, error.message)
            writer = Unarchived()
            self._unarchived.add(key)
        try:
            if writer.pod == pod and writer.complete:
                log.debug("execution %s: the log of pod %s is archived already", key, pod)
                return
            writer.begin(pod)
            frames: dict[int, protocol.Frame] = {}
            self._frames[key] = (pod, frames)
            log.info("execution %s: following the log of pod %s", key, pod)
            complete = await self._read(key, pod, writer, frames, env)
            writer.commit(complete=complete)
            log.info(
                "execution %s: %s the log of pod %s (up to seq %d)",
                key,
                "read all of" if complete else "stopped reading",
                pod,
                writer.last_seq,
            )
        except archive_.ArchiveError as error:
            log.error("execution %s: %s; its output is not fully archived", key, error.message)
        except BaseException:
            self._forget(key)
            raise
        finally:
            writer.close()
        try:
            await executions.observe_execution(key, env)  # with every frame read
        finally:
            self._forget(key)

    def _forget(self, key: executions.Key) -> None:
        self._frames.pop(key, None)
        self._unarchived.discard(key)

    async def _read(
        self,
        key: executions.Key,
        pod: str,
        writer: archive_.Writer,
        frames: dict[int, protocol.Frame],
        env: executions.Environment,
    ) -> bool:
        """Read the log until its end; True when it was read to its end."""
        failures = 0
        while True:
            decoder = protocol.Decoder()
            ended = False
            try:
                committed = time.monotonic()
                async for chunk in env.client.follow_log(
                    key.namespace, pod, execution_job.CONTAINER
                ):
                    news = self._take(key, decoder.feed(chunk), writer, frames)
                    if news or time.monotonic() - committed >= COMMIT_INTERVAL:
                        writer.commit(decoder.last_seq)
                        committed = time.monotonic()
                    if news:
                        await executions.observe_execution(key, env)
                self._take(key, decoder.close(), writer, frames)
                writer.commit(decoder.last_seq)
                ended = True
            except kube.KubeError as error:
                writer.commit(decoder.last_seq)
                if error.status == 404:
                    log.warning("execution %s: pod %s is gone: %s", key, pod, error.message)
                    return False
                log.warning("execution %s: %s", key, error.message)
            if any(isinstance(f, protocol.Exit) for f in frames.values()):
                return True
            try:
                current = await env.client.get("Pod", key.namespace, pod)
            except kube.KubeError as error:
                log.warning("execution %s: %s", key, error.message)
                current = {}
            if current is None:
                return False  # deleted: there is nothing more to read
            if ended and container_terminated(current):
                return True  # the supervisor wrote no exit frame (it was killed, say)
            delay = min(self._retry[1], self._retry[0] * 2**failures)
            failures += 1
            await asyncio.sleep(delay)

    def _take(
        self,
        key: executions.Key,
        records: list[protocol.Record],
        writer: archive_.Writer,
        frames: dict[int, protocol.Frame],
    ) -> bool:
        """Archive output, keep the other frames; True when a new one of those came."""
        news = False
        for record in records:
            if isinstance(record, protocol.Unframed):
                log.info(
                    "execution %s: unframed log line%s: %s",
                    key,
                    f" ({record.error})" if record.error else "",
                    record.text[:500],
                )
            elif isinstance(record, protocol.Output):
                writer.append(record)
            elif record.seq not in frames:
                frames[record.seq] = record
                news = True
        return news


class Unarchived:
    """A writer that keeps nothing, for when the archive cannot be opened: the log is
    still followed so that events reach the status."""

    def __init__(self) -> None:
        self.pod: str | None = None
        self.last_seq = 0
        self.complete = False

    def begin(self, pod: str) -> None:
        self.pod = pod

    def append(self, frame: protocol.Output) -> None:
        self.last_seq = max(self.last_seq, frame.seq)

    def commit(self, seq: int = 0, *, complete: bool = False) -> None:
        self.last_seq = max(self.last_seq, seq)
        self.complete = self.complete or complete

    def close(self) -> None:
        return None
