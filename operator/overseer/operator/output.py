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

An end the pod status shows before the log is read to its end (after a restart or a
handover, the log is read again from its start; or the kubelet reports the exit before
the last frames are read) waits for the log (:meth:`Followers.hold_end`): a status that
says Complete already carries every custom event of the log, in order. A log that
cannot be read delays the end by :data:`END_HOLD` at the most.

The tasks live in this process's memory (no kopf daemon: it would put a finalizer on
every execution, see ``docs/decisions.rst``). After a restart, kopf resumes every
execution and lists its pods; the first observation starts the follower again, which
re-reads the log from its start and skips, by ``seq``, what the archive already holds.
The Exit frame decides nothing here: the outcome is the pod's exit code, as derived by
:mod:`overseer.core.execution_phase`. The reading itself, one pod's log to its end, is
:mod:`overseer.operator.log_reading`; this module keeps the followers and their state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from overseer import archive as archive_
from overseer import errors
from overseer.core import backoff, event_bounds, execution_job, log_sequence
from overseer.crd import execution as execution_
from overseer.operator import context, executions, log_reading
from overseer_library import protocol

log = logging.getLogger(__name__)

KEPT_READ_LOGS = 1024
"""Fully read logs whose frames stay: the pod may show the end after the exit frame."""
END_HOLD = timedelta(seconds=30)
"""Longest an end seen in the pod status waits for the rest of the pod's log."""
KEPT_RECORDED = 4096
"""Pods whose archive's final state a status carries, remembered by name (about 350 bytes
each with the key, 1.4 MiB at most) so that their deletion needs no look at the archive;
the oldest go first."""


class Followers:
    """One log follower task per execution, and the frames each has read so far."""

    def __init__(
        self,
        archive: archive_.Archive,
        *,
        retry_min: float,
        retry_max: float,
        limits: event_bounds.EventLimits = event_bounds.DEFAULT_EVENT_LIMITS,
        end_hold: timedelta = END_HOLD,
    ) -> None:
        self._archive = archive
        self._limits = limits
        self._end_hold = end_hold
        self._retry = (retry_min, retry_max)
        self._tasks: dict[context.Key, tuple[str, asyncio.Task[None]]] = {}
        # A newer pod noticed while a follower of an older one still runs (a retry seen by
        # that follower's own closing observation, say): followed once that one ends.
        self._next: dict[context.Key, tuple[Mapping[str, Any], context.Environment]] = {}
        self._frames: dict[context.Key, tuple[str, event_bounds.KeptFrames]] = {}
        self._done: dict[context.Key, tuple[str, event_bounds.KeptFrames]] = {}
        self._unarchived: set[context.Key] = set()
        # Pods whose log this process read to its end or stopped reading (bounded: a
        # status that says the end forgets it), and since when an end waits for a log.
        self._read: dict[context.Key, str] = {}
        self._holding: dict[context.Key, datetime] = {}
        # The archive's state for the status, with its pod; kept after the follower ends
        # (a failed observation tried again needs it) until an ended execution's status
        # carries it (recorded()): kept for as long as the output, it was one per
        # execution ever followed, and an operator without execution TTL grew forever.
        self._reports: dict[context.Key, tuple[str, execution_.Archive]] = {}
        # Then only the name of the pod: its log needs no reading, its deletion no look
        # at the archive. Bounded: once forgotten, the archive is looked at, as at a start.
        self._recorded: dict[context.Key, str] = {}

    def frames(self, key: context.Key, pod: str | None) -> Sequence[protocol.Record]:
        pod_name, frames = self._frames.get(key) or self._done.get(key) or ("", None)
        if frames is None or pod is None or pod != pod_name:
            return ()
        return frames.values()

    def dropped(self, key: context.Key, pod: str | None) -> int:
        """Custom events of the pod's log not kept: over the execution's bounds."""
        pod_name, frames = self._frames.get(key) or self._done.get(key) or ("", None)
        return frames.dropped if frames is not None and pod == pod_name else 0

    def hold_end(
        self, key: context.Key, pod: Mapping[str, Any] | None, now: datetime
    ) -> datetime | None:
        """Until when an end derived from ``pod`` waits for the rest of its log: its job
        container has terminated, and this process has not read its log to the exit
        frame or to its end. None: say the end now (the log is read, there is none, or
        the hold ran out: a log that cannot be read delays the end only)."""
        if not self._unread(key, pod):
            self._holding.pop(key, None)
            return None
        since = self._holding.setdefault(key, now)
        if now - since >= self._end_hold:
            del self._holding[key]
            log.warning(
                "execution %s: its log is not read after %.0fs; its end is recorded without "
                "what the rest of the log holds",
                *(key, self._end_hold.total_seconds()),
            )
            return None
        return since + self._end_hold

    def _unread(self, key: context.Key, pod: Mapping[str, Any] | None) -> bool:
        if pod is None or not log_reading.container_terminated(pod):
            return False
        name = str(pod["metadata"]["name"])
        if name in (self._recorded.get(key), self._read.get(key)):
            return False
        pod_name, frames = self._frames.get(key) or self._done.get(key) or ("", None)
        return not (frames is not None and pod_name == name and frames.ended)

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

    def recorded(self, key: context.Key, status: execution_.ExecutionStatus) -> None:
        """``status`` was just written (or found as it is): the report it carries is
        dropped once the execution has ended and the report is final for its pod."""
        if status.phase in execution_.TERMINAL_PHASES:
            self._read.pop(key, None)  # the end is said: no observation holds it any more
        report = self._reports.get(key)
        # A Job that has not ended may start a retry's pod, which archive() must then
        # tell Archiving with the sizes it knows: the report stays until the end.
        if report is None or status.phase not in execution_.TERMINAL_PHASES:
            return
        pod, archived = report
        # A final report is its follower's last (only the closing observation follows it),
        # so no follower still running needs it either.
        if archived.state == "Archiving" or status.pod_name != pod or status.archive != archived:
            return
        del self._reports[key]
        self._recorded.pop(key, None)  # to the end: the newest
        self._recorded[key] = pod
        if len(self._recorded) > KEPT_RECORDED:
            del self._recorded[next(iter(self._recorded))]

    def held(self) -> int:
        """Executions whose archive state is kept for a status to carry: those followed
        now and those ended whose status does not carry it yet (a gauge's value)."""
        return len(self._reports)

    async def remove(self, key: context.Key) -> None:
        self._done.pop(key, None)
        await self._archive.remove(key.namespace, key.name)
        self.forget(key)

    def forget(self, key: context.Key) -> None:
        """The execution is gone: keep nothing of it (a follower still running ends once
        its pod is gone, and its closing observation forgets what it reported)."""
        self._done.pop(key, None)
        self._reports.pop(key, None)
        self._recorded.pop(key, None)
        self._read.pop(key, None)
        self._holding.pop(key, None)
        self._archive.forget_finished(key.namespace, key.name, None)

    def notice(
        self,
        key: context.Key,
        pod: Mapping[str, Any] | None,
        env: context.Environment,
        *,
        gone: str | None = None,
    ) -> None:
        if gone is not None:
            # settled() needs no archive for a pod that is gone; a follower that ends
            # after this tells it again in its closing observation (the pod still gone).
            self._archive.forget_finished(key.namespace, key.name, gone)
        if gone is not None and key not in self._reports and key not in self._tasks:
            if self._recorded.get(key) == gone:
                return  # read to its end (or its loss recorded), and the status says so
            # Deleted before this process read its log (it started after, say): whatever
            # the archive misses of it is lost now. Once per execution and process.
            task = asyncio.create_task(self._close_out(key, gone, env), name=f"close {key}")
            self._tasks[key] = (gone, task)
            task.add_done_callback(lambda done: self._tasks.pop(key, None))
            return
        if not log_reading.container_started(pod):
            return
        assert pod is not None
        name = str(pod["metadata"]["name"])
        if self._recorded.get(key) == name:
            return  # its end is in the status: nothing to read, no archive to open
        if (running := self._tasks.get(key)) is not None and not running[1].done():
            if running[0] != name:
                # Never two writers of one archive: the newer pod waits for this one's end.
                # Without this, a retry seen only by the closing observation (which runs
                # inside the older follower's task) would never be followed.
                self._next[key] = (pod, env)
            return
        uid = (pod["metadata"].get("labels") or {}).get(execution_job.EXECUTION_UID_LABEL)
        task = asyncio.create_task(self._follow(key, name, uid, env), name=f"follow {key}")
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
        await self._archive.close()

    async def _follow(
        self, key: context.Key, pod: str, uid: str | None, env: context.Environment
    ) -> None:
        writer: archive_.Writer
        try:
            # The archive keeps the execution's uid: one of an earlier execution of the
            # same name is started afresh, never appended to.
            writer = await self._archive.open(key.namespace, key.name, uid=uid)
        except errors.ArchiveError as error:
            # Events still reach the status; the output is lost.
            log.error("execution %s: %s; its output is not archived", key, error.message)
            writer = archive_.Unarchived()
            self._unarchived.add(key)
        try:
            if writer.pod == pod and writer.complete:
                log.debug("execution %s: the log of pod %s is archived already", key, pod)
                self._read_to_end(key, pod)
                changed = await self._report(key, pod, "Complete")
                if changed or key in self._holding:  # a restart, or an end waits: tell it
                    await executions.observe_execution(key, env)
                return
            writer.begin(pod)
            frames = event_bounds.KeptFrames(self._limits)
            self._frames[key] = (pod, frames)
            await self._report(key, pod, "Archiving")
            log.info("execution %s: following the log of pod %s", key, pod)
            seen = log_sequence.Seen(writer.last_seq)
            complete = await log_reading.read_log(
                key, pod, writer, frames, seen=seen, env=env, retry=self._retry
            )
            writer.commit(complete=complete)
            if not complete:  # the pod is gone, and the rest of its log with it
                _lost_end(key, pod, writer, seen, env)
            await writer.drain()  # what the status says is in the store
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
        self._read_to_end(key, pod)
        try:
            await executions.observe_execution(key, env)  # with every frame read
        finally:
            self._forget(key)

    async def _close_out(self, key: context.Key, pod: str, env: context.Environment) -> None:
        """The archive of a pod that is gone: Complete if its log was read to its end,
        else Incomplete, the rest recorded lost (once). Waits for the store."""
        failures = 0
        while True:
            try:
                stat = await self._archive.stat(key.namespace, key.name)
                if stat is None or stat.pod != pod:
                    return  # nothing of that pod's log was ever archived
                state: execution_.OutputState = "Complete" if stat.complete else "Incomplete"
                if not stat.complete and not any(x.reason == "PodDeleted" for x in stat.lost):
                    writer = await self._archive.open(key.namespace, key.name)
                    try:
                        _lost_end(key, pod, writer, log_sequence.Seen(writer.last_seq), env)
                        await writer.drain()
                    finally:
                        writer.close()
                break
            except errors.ArchiveError as error:
                log.warning("execution %s: %s; trying again", key, error.message)
                await asyncio.sleep(
                    backoff.delay(failures, first=self._retry[0], ceiling=self._retry[1])
                )
                failures += 1
        if await self._report(key, pod, state):
            await executions.observe_execution(key, env)

    async def _report(self, key: context.Key, pod: str, state: execution_.OutputState) -> bool:
        """Keep the archive's state for the status; True when it changed."""
        if key in self._unarchived:
            return False
        stat = await self._archive.stat(key.namespace, key.name)
        sizes = stat.sizes if stat is not None else {}
        lost = [
            execution_.LostOutput(
                after_seq=item.after_seq,
                before_seq=item.before_seq,
                stdout_offset=item.offsets.get("stdout", 0),
                stderr_offset=item.offsets.get("stderr", 0),
                reason=item.reason,
            )
            for item in (stat.lost if stat is not None else ())
        ]
        report = execution_.Archive(
            backend=self._archive.backend,
            location=self._archive.location(key.namespace, key.name),
            state=state,
            stdout=execution_.ArchivedStream(size=sizes.get("stdout", 0)),
            stderr=execution_.ArchivedStream(size=sizes.get("stderr", 0)),
            lost=lost or None,
        )
        changed = self._reports.get(key) != (pod, report)
        self._reports[key] = (pod, report)
        return changed

    def _read_to_end(self, key: context.Key, pod: str) -> None:
        """This process read the pod's log to its end, or will read no more of it."""
        self._read.pop(key, None)  # to the end: the newest
        self._read[key] = pod
        if len(self._read) > KEPT_READ_LOGS:
            del self._read[next(iter(self._read))]

    def _forget(self, key: context.Key) -> None:
        self._frames.pop(key, None)
        self._unarchived.discard(key)


def _lost_end(
    key: context.Key,
    pod: str,
    writer: archive_.Writer,
    seen: log_sequence.Seen,
    env: context.Environment,
) -> None:
    """The pod went before its log was read to its end: record the loss, and say so."""
    writer.lose(seen.highest, None, "PodDeleted")
    log_reading.post_lost(
        key,
        env,
        f"the pod {pod} was deleted before its log was read to its end: the archived "
        f"output misses what the job wrote after frame {seen.highest}",
    )
