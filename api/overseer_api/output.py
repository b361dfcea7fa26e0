"""Reading an execution's output for the output routes: how whole it is, the bounded wait,
the follower.

An execution's status says what its archive holds (``status.archive.state``, written by
the operator when it starts and ends reading a pod's log, see ``docs/executions.rst``);
:func:`derive_state` reads it from the cached body:

``Complete``
   The execution has ended and its output is whole: the archive's state is Complete,
   or the job's process never started (nothing was written, nothing will be).
``Running``
   The execution has not ended: its output may still grow.
``Archiving``
   The execution has ended but the operator is still reading the end of the pod's log
   (a 100 MiB output takes a second or two), or has not started reading it.
``Incomplete``
   The operator stopped reading the log before its end (the pod was deleted first):
   what the archive holds is all there will ever be, and it misses a part.

A read of an execution that is Archiving waits (:func:`wait_settled`, at most the
``output_wait`` setting) until it is Complete or Incomplete, so that a client that waited
for the end gets every byte; the answer says, in its headers, when it holds less than
the job wrote. A follower (:func:`follow`) streams the bytes as they are archived and
ends once the execution has ended and its archive is Complete or Incomplete, or
``output_wait`` after the end if it never gets there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal

from overseer import archive as archive_
from overseer import errors
from overseer.crd import execution as execution_
from overseer_library import protocol

State = Literal["Complete", "Running", "Archiving", "Incomplete"]
SETTLED: frozenset[State] = frozenset({"Complete", "Incomplete"})
POLL = 0.1
"""Seconds between two looks at the cached status while waiting for the archive."""

Body = Mapping[str, Any]


def derive_state(execution: Body) -> State:
    """How whole an execution's output is, from its status (see the module's docstring)."""
    status = execution.get("status") or {}
    if status.get("phase") not in execution_.TERMINAL_PHASES:
        return "Running"
    archived = (status.get("archive") or {}).get("state")
    if archived in ("Complete", "Incomplete"):
        return "Complete" if archived == "Complete" else "Incomplete"
    if archived is None and not status.get("startTime"):
        return "Complete"  # refused, cancelled, or its container never started
    return "Archiving"


Lookup = Callable[[], Body]
"""The execution's body as cached now; raises ``errors.NotFoundError`` once it is gone."""


def _current(lookup: Lookup) -> State:
    try:
        return derive_state(lookup())
    except errors.NotFoundError:
        return "Incomplete"  # deleted meanwhile: nothing more will come


async def current_state(archive: archive_.Reader, where: tuple[str, str], lookup: Lookup) -> State:
    """:func:`derive_state`, or Complete when the status lags (or, written by an older
    operator, never says) but the archive says the log of the execution's pod was read to
    its end."""
    try:
        body = lookup()
    except errors.NotFoundError:
        return "Incomplete"
    state = derive_state(body)
    if state == "Archiving":
        pod = (body.get("status") or {}).get("podName")
        stat = await archive.stat(*where)
        if pod is not None and stat is not None and stat.complete and stat.pod == pod:
            return "Complete"
    return state


async def wait_settled(
    archive: archive_.Reader, where: tuple[str, str], lookup: Lookup, wait: float
) -> State:
    """The output's state once it is no longer Archiving, or after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    state = await current_state(archive, where, lookup)
    while state == "Archiving" and time.monotonic() < deadline:
        await asyncio.sleep(min(POLL, max(deadline - time.monotonic(), 0)))
        state = await current_state(archive, where, lookup)
    return state


class _EndWatch:
    """When a follower should stop waiting: the output settled, or the execution ended
    more than ``wait`` seconds ago without the archive getting there."""

    def __init__(self, lookup: Lookup, wait: float) -> None:
        self._lookup = lookup
        self._wait = wait
        self._ended_at: float | None = None

    def __call__(self) -> bool:
        state = _current(self._lookup)
        if state == "Running":
            return False
        if state in SETTLED:
            return True
        if self._ended_at is None:
            self._ended_at = time.monotonic()
        return time.monotonic() - self._ended_at >= self._wait


async def follow(
    archive: archive_.Reader,
    where: tuple[str, str],
    stream: protocol.Stream,
    lookup: Lookup,
    *,
    wait: float,
    start: int = 0,
) -> AsyncIterator[bytes]:
    """The bytes of an execution's ``stream`` (``where``: namespace, resource name) from
    byte ``start`` on, as they are archived, until the output settles (see the module's
    docstring).

    A client that goes away cancels it (Starlette listens for the disconnect).
    """
    namespace, name = where
    give_up = _EndWatch(lookup, wait)
    offset = start
    while True:
        chunks = archive.follow(namespace, name, stream, offset, give_up=give_up)
        async for chunk in chunks:
            offset += len(chunk)
            yield chunk
        # The archive said complete (for its latest pod), or it is time to stop.
        if await current_state(archive, where, lookup) in SETTLED or give_up():
            return
        await asyncio.sleep(POLL)  # a retry's pod is about to start: follow its output
