"""Read one pod's job log to its end: archive its output, keep its other frames.

:class:`overseer.operator.output.Followers` runs one :func:`read_log` per execution
and pod; this module is the reading itself. The container log is streamed
(:meth:`Kube.follow_log`) and decoded (``overseer_library.protocol``); ``out`` frames go
to the archive writer, the other frames (start, events, exit...) into ``frames``, and
each new one triggers :func:`overseer.operator.executions.observe_execution`. A stream
that breaks is followed again; one that ends short of the supervisor's last ``seq``
(the kubelet rotated the file) is read again, and what stays unread is counted lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from overseer import archive as archive_
from overseer import errors
from overseer.core import backoff, event_bounds, execution_facts, execution_job, log_sequence
from overseer.crd import base
from overseer.crd import execution as execution_
from overseer.operator import context, executions, metrics
from overseer_library import protocol

log = logging.getLogger("overseer.operator.output")
"""The followers' logger: what a follower reads is logged where its follower's lines are."""

COMMIT_INTERVAL = 1.0
"""Seconds between two records of the archive's state while output flows."""
MAX_REREADS = 3
"""Times a log that ended short of the supervisor's last ``seq`` is read again."""


def container_started(pod: Mapping[str, Any] | None) -> bool:
    """The job's container is running or has terminated: it has a log to read."""
    state = execution_facts.container_state(pod, execution_job.CONTAINER)
    return "running" in state or "terminated" in state


def container_terminated(pod: Mapping[str, Any] | None) -> bool:
    return "terminated" in execution_facts.container_state(pod, execution_job.CONTAINER)


async def read_log(
    key: context.Key,
    pod: str,
    writer: archive_.Writer,
    frames: event_bounds.KeptFrames,
    *,
    seen: log_sequence.Seen,
    env: context.Environment,
    retry: tuple[float, float],
) -> bool:
    """Read the log until its end; True when it was read to its end (``seen`` counts
    the frames it skipped over). A broken stream is followed again after a backoff
    between ``retry``'s first and ceiling delays.

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
            partial = await _stream(
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
        if frames.ended:
            report_lost(key, pod, seen, env)
            return True
        current = await _pod_now(key, pod, env)
        if current is None:
            return False  # deleted: there is nothing more to read
        if partial is not None and container_terminated(current):
            expected = summary_seq(current)
            if expected is not None and seen.highest < expected and rereads < MAX_REREADS:
                rereads += 1
                log.info(
                    "execution %s: the log of pod %s ended at seq %d of %d (rotated as "
                    "the job ended?); reading it again",
                    *(key, pod, seen.highest, expected),
                )
                continue
            _end_cut(key, pod, partial, expected, writer=writer, frames=frames, seen=seen, env=env)
            return True
        delay = backoff.delay(failures, first=retry[0], ceiling=retry[1])
        failures += 1
        await asyncio.sleep(delay)


def _end_cut(
    key: context.Key,
    pod: str,
    partial: bytes,
    expected: int | None,
    *,
    writer: archive_.Writer,
    frames: event_bounds.KeptFrames,
    seen: log_sequence.Seen,
    env: context.Environment,
) -> None:
    """End a log that stopped short of an exit frame: keep what it has, count the rest.

    The supervisor wrote no exit frame (it was killed, say), or the rest of the log
    is in a file the API no longer serves: ``partial`` (a line the stream cut) is
    taken as it is, and the frames up to the summary's ``expected`` seq are lost.
    """
    _take(key, protocol.decode_all([partial]), writer, frames, seen)
    writer.commit(seen.highest)
    if expected is not None and seen.highest < expected:
        writer.lose(seen.highest, expected + 1, "LogCut")
        seen.lost += expected - seen.highest
    report_lost(key, pod, seen, env)


async def _stream(
    key: context.Key,
    pod: str,
    *,
    writer: archive_.Writer,
    frames: event_bounds.KeptFrames,
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
            news = _take(key, decoder.feed(data), writer, frames, seen)
            if news or time.monotonic() - committed >= COMMIT_INTERVAL:
                writer.commit(decoder.last_seq)
                committed = time.monotonic()
            else:
                # Readable at once (the state, rewritten less often, says what is safe).
                writer.flush()
            if news:
                await executions.observe_execution(key, env)
            # A store that lags holds the reading here: the log keeps what is not read.
            await writer.ready()
        rest = decoder.take_partial()
        writer.commit(decoder.last_seq)
    except errors.KubeError as error:
        writer.commit(decoder.last_seq)
        if error.status == 404:
            raise
        log.warning("execution %s: %s", key, error.message)
        return None
    return rest


def report_lost(
    key: context.Key, pod: str, seen: log_sequence.Seen, env: context.Environment
) -> None:
    if not seen.lost:
        return
    message = (
        f"{seen.lost} frame(s) of the log of pod {pod} were never read (the kubelet "
        "rotated the log faster than it was followed): the archived output misses "
        "that part"
    )
    post_lost(key, env, message)


def post_lost(key: context.Key, env: context.Environment, message: str) -> None:
    """Say that output was lost: in the log, and as a Warning Event of the execution."""
    log.warning("execution %s: %s", key, message)
    body = {
        "apiVersion": base.API_VERSION,
        "kind": execution_.KIND.kind,
        "metadata": {"namespace": key.namespace, "name": key.name},
    }
    env.post_event(body, "Warning", "OutputIncomplete", message)


def _take(
    key: context.Key,
    records: Iterable[protocol.Record],
    writer: archive_.Writer,
    frames: event_bounds.KeptFrames,
    seen: log_sequence.Seen,
) -> bool:
    """Archive output, keep the other frames (bounded); True when one was newly kept."""
    news = False
    for record in records:
        if not isinstance(record, protocol.Unframed):
            if record.seq > seen.highest + 1:
                writer.lose(seen.highest, record.seq, "LogRotated")
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
        elif frames.add(record):
            metrics.frame_read(record)
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


def summary_seq(pod: Mapping[str, Any]) -> int | None:
    """The last ``seq`` the supervisor wrote, from its summary in the termination message."""
    terminated = execution_facts.container_state(pod, execution_job.CONTAINER).get("terminated")
    summary = protocol.decode_summary((terminated or {}).get("message") or "")
    return None if summary is None else summary.last_seq
