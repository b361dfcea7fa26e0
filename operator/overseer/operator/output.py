"""Follow each running execution's pod log: archive its output, carry its events to the status.

For an execution whose job container has started (running or terminated) and whose log
is not read to its end yet, a task streams the container log (:meth:`Kube.follow_log`),
decodes the supervisor's frames (``overseer_library.protocol``), appends ``out`` frames to
the archive (:mod:`overseer.archive`) and keeps the other frames (start, events, exit...)
for :func:`overseer.operator.executions.observe_execution`, which it calls whenever new
ones arrive: that is how custom ``event`` frames become status events. It ends when the
``exit`` frame is read, or when the stream ends and the container has terminated (or the
pod is gone); the archive then records that the log was read to its end, and the
status's ``archive.state`` turns from Archiving to Complete (Incomplete: it stopped short).

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from overseer import archive as archive_
from overseer import errors
from overseer.core import backoff, execution_facts, execution_job, log_sequence
from overseer.crd import base
from overseer.crd import execution as execution_
from overseer.operator import context, executions
from overseer_library import protocol

log = logging.getLogger(__name__)

COMMIT_INTERVAL = 1.0
"""Seconds between two records of the archive's state while output flows."""
MAX_REREADS = 3
"""Times a log that ended short of the supervisor's last ``seq`` is read again."""
KEPT_READ_LOGS = 1024
"""Fully read logs whose frames stay: the pod may show the end after the exit frame."""


def container_started(pod: Mapping[str, Any] | None) -> bool:
    """The job's container is running or has terminated: it has a log to read."""
    state = execution_facts.container_state(pod, execution_job.CONTAINER)
    return "running" in state or "terminated" in state


def container_terminated(pod: Mapping[str, Any] | None) -> bool:
    return "terminated" in execution_facts.container_state(pod, execution_job.CONTAINER)


class Followers:
    """One log follower task per execution, and the frames each has read so far."""

    def __init__(self, archive: archive_.Archive, *, retry_min: float, retry_max: float) -> None:
        self._archive = archive
        self._retry = (retry_min, retry_max)
        self._tasks: dict[context.Key, tuple[str, asyncio.Task[None]]] = {}
        # A newer pod noticed while a follower of an older one still runs (a retry seen by
        # that follower's own closing observation, say): followed once that one ends.
        self._next: dict[context.Key, tuple[Mapping[str, Any], context.Environment]] = {}
        self._frames: dict[context.Key, tuple[str, dict[int, protocol.Frame]]] = {}
        self._done: dict[context.Key, tuple[str, dict[int, protocol.Frame]]] = {}
        self._unarchived: set[context.Key] = set()
        # The archive's state for the status, with its pod; kept after the follower ends
        # (a failed observation tried again needs it) until the output is removed.
        self._reports: dict[context.Key, tuple[str, execution_.Archive]] = {}

    def frames(self, key: context.Key, pod: str | None) -> Sequence[protocol.Record]:
        pod_name, frames = self._frames.get(key) or self._done.get(key) or ("", {})
        if pod is None or pod != pod_name:
            return ()
        return [frames[seq] for seq in sorted(frames)]

    def archive(self, key: context.Key, pod: str | None) -> execution_.Archive | None:
        if key in self._unarchived or (report := self._reports.get(key)) is None:
            return None
        reported, archived = report
        if pod is not None and pod != reported:  # a retry's pod, whose log is not read yet
            return archived.model_copy(update={"state": "Archiving"})
        return archived

    def settled(self, key: context.Key, pod: str | None, gone: bool) -> bool:
        if key in self._unarchived:
            return False  # the pod's log is the only copy of the output
        try:
            if pod is not None and self._archive.finished_pod(key.namespace, key.name) == pod:
                return True
        except errors.ArchiveError as error:
            log.warning("execution %s: %s", key, error.message)
            return False
        return pod is None or gone

    def remove(self, key: context.Key) -> None:
        self._done.pop(key, None)
        self._archive.remove(key.namespace, key.name)
        self._reports.pop(key, None)

    def notice(
        self, key: context.Key, pod: Mapping[str, Any] | None, env: context.Environment
    ) -> None:
        if not container_started(pod):
            return
        assert pod is not None
        name = str(pod["metadata"]["name"])
        if (running := self._tasks.get(key)) is not None and not running[1].done():
            if running[0] != name:
                # Never two writers of one archive: the newer pod waits for this one's end.
                # Without this, a retry seen only by the closing observation (which runs
                # inside the older follower's task) would never be followed.
                self._next[key] = (pod, env)
            return
        task = asyncio.create_task(self._follow(key, name, env), name=f"follow {key}")
        self._tasks[key] = (name, task)

        def forget(done: asyncio.Task[None]) -> None:
            if (current := self._tasks.get(key)) is not None and current[1] is done:
                del self._tasks[key]
            if not done.cancelled() and (error := done.exception()) is not None:
                # A bug: say so; the next observation of the execution starts it again.
                log.error("execution %s: following its log failed", key, exc_info=error)
            if not done.cancelled() and (waiting := self._next.pop(key, None)) is not None:
                self.notice(key, *waiting)

        task.add_done_callback(forget)

    def running(self) -> list[asyncio.Task[None]]:
        """The follower tasks that run now."""
        return [task for _, task in self._tasks.values() if not task.done()]

    async def close(self) -> None:
        self._next.clear()
        tasks = [task for _, task in self._tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, key: context.Key, pod: str, env: context.Environment) -> None:
        writer: archive_.Writer
        try:
            writer = self._archive.open(key.namespace, key.name)
        except errors.ArchiveError as error:
            # Events still reach the status; the output is lost.
            log.error("execution %s: %s; its output is not archived", key, error.message)
            writer = Unarchived()
            self._unarchived.add(key)
        try:
            if writer.pod == pod and writer.complete:
                log.debug("execution %s: the log of pod %s is archived already", key, pod)
                if await self._report(key, pod, "Complete"):  # a restart: tell the status
                    await executions.observe_execution(key, env)
                return
            writer.begin(pod)
            frames: dict[int, protocol.Frame] = {}
            self._frames[key] = (pod, frames)
            await self._report(key, pod, "Archiving")
            log.info("execution %s: following the log of pod %s", key, pod)
            seen = log_sequence.Seen(writer.last_seq)
            complete = await self._read(key, pod, writer, frames, seen=seen, env=env)
            writer.commit(complete=complete)
            if complete:  # for later observations; the oldest go first
                self._done[key] = (pod, frames)
                if len(self._done) > KEPT_READ_LOGS:
                    del self._done[next(iter(self._done))]
            await self._report(key, pod, "Complete" if complete and not seen.lost else "Incomplete")
            done = "read all of" if complete else "stopped reading"
            log.info(
                "execution %s: %s the log of pod %s (up to seq %d)", key, done, pod, writer.last_seq
            )
        except errors.ArchiveError as error:
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

    async def _report(self, key: context.Key, pod: str, state: execution_.OutputState) -> bool:
        """Keep the archive's state for the status; True when it changed."""
        if key in self._unarchived:
            return False
        stat = await self._archive.stat(key.namespace, key.name)
        sizes = stat.sizes if stat is not None else {}
        report = execution_.Archive(
            backend=self._archive.backend,
            location=self._archive.location(key.namespace, key.name),
            state=state,
            stdout=execution_.ArchivedStream(size=sizes.get("stdout", 0)),
            stderr=execution_.ArchivedStream(size=sizes.get("stderr", 0)),
        )
        changed = self._reports.get(key) != (pod, report)
        self._reports[key] = (pod, report)
        return changed

    def _forget(self, key: context.Key) -> None:
        self._frames.pop(key, None)
        self._unarchived.discard(key)

    async def _read(
        self,
        key: context.Key,
        pod: str,
        writer: archive_.Writer,
        frames: dict[int, protocol.Frame],
        *,
        seen: log_sequence.Seen,
        env: context.Environment,
    ) -> bool:
        """Read the log until its end; True when it was read to its end (``seen`` counts
        the frames it skipped over).

        The kubelet rotates a container's log file past ``containerLogMaxSize``, and a
        follow stream ends at the end of the old file when the container ends: the rest
        of the log, from the middle of a frame on, is in the new file. So a stream that
        ends before the last ``seq`` the supervisor's summary names is read again (the
        API serves the current file), and a line the old stream cut is joined to the
        start of the new one when that start is not a frame's.
        """
        failures = 0
        rereads = 0
        partial: bytes | None = b""
        while True:
            try:
                partial = await self._stream(
                    key,
                    pod,
                    writer=writer,
                    frames=frames,
                    seen=seen,
                    partial=partial or b"",
                    env=env,
                )
            except errors.KubeError as error:  # 404: only that one is raised
                log.warning("execution %s: pod %s is gone: %s", key, pod, error.message)
                return False
            if any(isinstance(f, protocol.Exit) for f in frames.values()):
                self._report_lost(key, pod, seen, env)
                return True
            current = await _pod_now(key, pod, env)
            if current is None:
                return False  # deleted: there is nothing more to read
            if partial is not None and container_terminated(current):
                expected = _summary_seq(current)
                if expected is not None and seen.highest < expected and rereads < MAX_REREADS:
                    rereads += 1
                    log.info(
                        "execution %s: the log of pod %s ended at seq %d of %d (rotated as "
                        "the job ended?); reading it again",
                        *(key, pod, seen.highest, expected),
                    )
                    continue
                self._end_cut(
                    key, pod, partial, expected, writer=writer, frames=frames, seen=seen, env=env
                )
                return True
            delay = backoff.delay(failures, first=self._retry[0], ceiling=self._retry[1])
            failures += 1
            await asyncio.sleep(delay)

    def _end_cut(
        self,
        key: context.Key,
        pod: str,
        partial: bytes,
        expected: int | None,
        *,
        writer: archive_.Writer,
        frames: dict[int, protocol.Frame],
        seen: log_sequence.Seen,
        env: context.Environment,
    ) -> None:
        """End a log that stopped short of an exit frame: keep what it has, count the rest.

        The supervisor wrote no exit frame (it was killed, say), or the rest of the log
        is in a file the API no longer serves: ``partial`` (a line the stream cut) is
        taken as it is, and the frames up to the summary's ``expected`` seq are lost.
        """
        self._take(key, protocol.decode_all([partial]), writer, frames, seen)
        writer.commit(seen.highest)
        if expected is not None and seen.highest < expected:
            seen.lost += expected - seen.highest
        self._report_lost(key, pod, seen, env)

    async def _stream(
        self,
        key: context.Key,
        pod: str,
        *,
        writer: archive_.Writer,
        frames: dict[int, protocol.Frame],
        seen: log_sequence.Seen,
        partial: bytes,
        env: context.Environment,
    ) -> bytes | None:
        """Follow one log stream to its end, ``partial`` (a line the previous stream cut)
        joined to its start when that is not a frame's. Return the line this stream cut
        at its end (``b""`` for none), or None when the stream broke. Raises
        :class:`errors.KubeError` when the pod is gone (404)."""
        decoder = protocol.Decoder()
        joined = not partial
        try:
            committed = time.monotonic()
            async for chunk in env.client.follow_log(key.namespace, pod, execution_job.CONTAINER):
                data = chunk
                if not joined and chunk:
                    joined = True
                    if not chunk.startswith(protocol.MAGIC):
                        data = partial + chunk  # the rest of a frame cut by a rotation
                news = self._take(key, decoder.feed(data), writer, frames, seen)
                if news or time.monotonic() - committed >= COMMIT_INTERVAL:
                    writer.commit(decoder.last_seq)
                    committed = time.monotonic()
                else:
                    # Readable at once (the state, rewritten less often, says what is safe).
                    writer.flush()
                if news:
                    await executions.observe_execution(key, env)
            rest = decoder.take_partial()
            writer.commit(decoder.last_seq)
        except errors.KubeError as error:
            writer.commit(decoder.last_seq)
            if error.status == 404:
                raise
            log.warning("execution %s: %s", key, error.message)
            return None
        return rest

    @staticmethod
    def _report_lost(
        key: context.Key, pod: str, seen: log_sequence.Seen, env: context.Environment
    ) -> None:
        if not seen.lost:
            return
        message = (
            f"{seen.lost} frame(s) of the log of pod {pod} were never read (the kubelet "
            "rotated the log faster than it was followed): the archived output misses "
            "that part"
        )
        log.warning("execution %s: %s", key, message)
        body = {
            "apiVersion": base.API_VERSION,
            "kind": execution_.KIND.kind,
            "metadata": {"namespace": key.namespace, "name": key.name},
        }
        env.post_event(body, "Warning", "OutputIncomplete", message)

    def _take(
        self,
        key: context.Key,
        records: Iterable[protocol.Record],
        writer: archive_.Writer,
        frames: dict[int, protocol.Frame],
        seen: log_sequence.Seen,
    ) -> bool:
        """Archive output, keep the other frames; True when a new one of those came."""
        news = False
        for record in records:
            if not isinstance(record, protocol.Unframed):
                seen.take(record.seq)
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


async def _pod_now(
    key: context.Key, pod: str, env: context.Environment
) -> Mapping[str, Any] | None:
    """The pod as it is now: None once deleted, ``{}`` when it cannot be read."""
    try:
        return await env.client.get("Pod", key.namespace, pod)
    except errors.KubeError as error:
        log.warning("execution %s: %s", key, error.message)
        return {}


def _summary_seq(pod: Mapping[str, Any]) -> int | None:
    """The last ``seq`` the supervisor wrote, from its summary in the termination message."""
    terminated = execution_facts.container_state(pod, execution_job.CONTAINER).get("terminated")
    summary = protocol.decode_summary((terminated or {}).get("message") or "")
    return None if summary is None else summary.last_seq


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

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
