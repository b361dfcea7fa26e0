"""The output archive: each execution's stdout and stderr, byte for byte, kept after its pod.

An :class:`Archive` is a backend: :mod:`overseer.archive_local` (a directory, for host
processes and development) or :mod:`overseer.archive_s3` (S3-compatible object storage,
the archive of record); :mod:`overseer.archive_factory` builds the one the settings name.
This module holds what they share: the writer's and reader's protocols, :class:`Stat`
and :class:`Lost`, and :class:`Unarchived` (a writer that keeps nothing). A writer holds
the follower back (:meth:`Writer.ready`) while its store lags, so a slow or absent store
delays the archive and never drops output; what could not be archived (the pod was
deleted first) is recorded as :class:`Lost` ranges.

Readers (:class:`Reader`, the API's) stream ranges, or follow a stream as it grows, in
bounded chunks; a follower sees what the writer flushed, and ends once the state is complete.

Errors of the file system are wrapped in :class:`errors.ArchiveError` (waiting: retry later).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from overseer_library import protocol

STREAMS = protocol.STREAMS
CHUNK_SIZE = 256 * 1024
"""Most bytes a reader yields at once (and holds in memory)."""


class Writer(Protocol):
    """The archive of one execution, open for appending."""

    @property
    def pod(self) -> str | None:
        """The pod whose log the archive holds (the latest attempt's)."""

    @property
    def last_seq(self) -> int:
        """Frames of ``pod`` up to this ``seq`` are archived: skip them when re-reading."""

    @property
    def complete(self) -> bool:
        """The log of ``pod`` was read to its end: there is nothing more to read."""

    def begin(self, pod: str) -> None:
        """Start (or go on with) the log of ``pod``; a new pod (a retry) restarts ``seq``."""

    def append(self, frame: protocol.Output) -> None:
        """Append an output frame's bytes to its stream, unless its ``seq`` is archived."""

    def commit(self, seq: int = 0, *, complete: bool = False) -> None:
        """Record that every frame up to ``seq`` (and every one appended) is archived, and
        that the log ended when ``complete``; until then a restart reads them again."""

    def flush(self) -> None:
        """Make what was appended readable by others (a live follower of the output)."""

    def lose(self, after_seq: int, before_seq: int | None, reason: str) -> None:
        """Record that the frames after ``after_seq`` (up to ``before_seq`` excluded, or
        all) were never read: they belong at each stream's current end."""

    async def ready(self) -> None:
        """Return once the store keeps up: the follower waits here before reading more."""

    async def drain(self) -> None:
        """Store everything appended and committed, waiting for the store as long as it
        takes; the writer is closed then."""

    def close(self) -> None:
        """Let go at once; what was not stored is read again from the log next time."""


@dataclasses.dataclass(frozen=True)
class Lost:
    """Frames of a pod's log that were never archived, and where their bytes belong."""

    after_seq: int
    before_seq: int | None
    """The first frame read again after the gap; None: the log's end was never read."""
    offsets: Mapping[protocol.Stream, int]
    """Each stream's size when the gap was found: the missing bytes belong there."""
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "afterSeq": self.after_seq,
            "beforeSeq": self.before_seq,
            "offsets": dict(self.offsets),
            "reason": self.reason,
        }


def parse_lost(value: object) -> tuple[Lost, ...]:
    """The ``lost`` list of a state or manifest, skipping what does not parse."""
    found = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("afterSeq"), int):
            continue
        before, offsets = item.get("beforeSeq"), item.get("offsets") or {}
        found.append(
            Lost(
                after_seq=item["afterSeq"],
                before_seq=before if isinstance(before, int) else None,
                offsets={s: int(offsets.get(s) or 0) for s in STREAMS},
                reason=str(item.get("reason") or ""),
            )
        )
    return tuple(found)


@dataclasses.dataclass(frozen=True)
class Stat:
    """What is archived of one execution at one moment."""

    sizes: Mapping[protocol.Stream, int]
    """Bytes readable now, per stream."""
    complete: bool
    """The log of ``pod`` (the last archived) was read to its end: the sizes are final."""
    pod: str | None
    lost: tuple[Lost, ...] = ()
    """What is known missing (the pod was deleted before its log was read to its end)."""


class Reader(Protocol):
    """Reads executions' output, in constant memory: what the API uses.

    The local backend reads files; the s3 one, sizes from the manifest and ranges from
    the chunk objects holding them.
    """

    async def stat(self, namespace: str, name: str) -> Stat | None:
        """What is archived of one execution now; None when nothing is (yet)."""

    def read_range(
        self,
        namespace: str,
        name: str,
        stream: protocol.Stream,
        start: int = 0,
        stop: int | None = None,
    ) -> AsyncIterator[bytes]:
        """The bytes ``start`` to ``stop`` (excluded; None: the size when called) of a
        stream, in order, in chunks of at most :data:`CHUNK_SIZE` bytes.

        Raises :class:`errors.ArchiveError` when the stream holds fewer bytes than asked.
        """

    def follow(
        self,
        namespace: str,
        name: str,
        stream: protocol.Stream,
        start: int = 0,
        *,
        give_up: Callable[[], bool] | None = None,
    ) -> AsyncIterator[bytes]:
        """The bytes of a stream from ``start`` on, as they are archived (about a second
        after the job wrote them), in chunks of at most :data:`CHUNK_SIZE` bytes.

        Ends once the archive is complete and every byte was yielded, or when nothing new
        is there and ``give_up()`` says to stop waiting (nothing archived yet: it waits),
        after one more look: what says to stop (the execution's status, in the API) may
        be newer than the archive as last read, and the last bytes come before it.
        """


class Archive(Reader, Protocol):
    """Where executions' output is kept."""

    backend: str
    """Its name in an execution's ``status.archive.backend``: ``local``, ``s3``..."""

    def location(self, namespace: str, name: str) -> str:
        """Where one execution's output is, for ``status.archive.location``."""

    async def open(self, namespace: str, name: str, *, uid: str | None = None) -> Writer:
        """The archive of execution ``uid``: created, or emptied if another's."""

    def finished_pod(self, namespace: str, name: str) -> str | None:
        """The pod whose log is archived to its end; None while none is (or not known
        yet: the s3 backend answers from what this process wrote or opened)."""

    def forget_finished(self, namespace: str, name: str, pod: str | None) -> None:
        """``pod`` is gone (None: the execution is), so no one asks :meth:`finished_pod`
        about it again: a backend that remembers it (s3, in memory) may forget it."""

    async def remove(self, namespace: str, name: str) -> None:
        """Delete one execution's output; nothing archived is fine."""

    async def close(self) -> None:
        """Release connections; at the process's end."""


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

    def lose(self, after_seq: int, before_seq: int | None, reason: str) -> None:
        return None

    async def ready(self) -> None:
        return None

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None
