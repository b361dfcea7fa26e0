"""The archive as the leader writes it: every write fenced, every byte counted.

:class:`FencedArchive` wraps the archive the followers write to: an append, commit or
removal first asks the fence (:meth:`overseer.operator.leadership.Elector.fence`), which
raises :class:`errors.NotLeaderError` once this operator may no longer act, so a deposed
leader's follower never writes into an archive the new leader's follower is filling.
Reads pass through unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from overseer import archive as archive_
from overseer import errors
from overseer.operator import metrics
from overseer_library import protocol

Fence = Callable[[], None]


def _check(fence: Fence) -> None:
    try:
        fence()
    except errors.NotLeaderError as error:
        # The follower stops on an ArchiveError and leaves the rest to the leader.
        raise errors.ArchiveError(error.message) from None


class FencedWriter:
    """A :class:`archive_.Writer` that writes only while the fence allows it."""

    def __init__(self, inner: archive_.Writer, fence: Fence) -> None:
        self._inner = inner
        self._fence = fence

    @property
    def pod(self) -> str | None:
        return self._inner.pod

    @property
    def last_seq(self) -> int:
        return self._inner.last_seq

    @property
    def complete(self) -> bool:
        return self._inner.complete

    def begin(self, pod: str) -> None:
        _check(self._fence)
        self._inner.begin(pod)

    def append(self, frame: protocol.Output) -> None:
        _check(self._fence)
        before = self._inner.last_seq
        self._inner.append(frame)
        if frame.seq > before:
            metrics.archived(frame.stream, len(frame.data))

    def commit(self, seq: int = 0, *, complete: bool = False) -> None:
        _check(self._fence)
        self._inner.commit(seq, complete=complete)

    def flush(self) -> None:
        _check(self._fence)
        self._inner.flush()

    def lose(self, after_seq: int, before_seq: int | None, reason: str) -> None:
        _check(self._fence)
        self._inner.lose(after_seq, before_seq, reason)

    async def ready(self) -> None:
        await self._inner.ready()

    async def drain(self) -> None:
        _check(self._fence)
        await self._inner.drain()

    def close(self) -> None:
        self._inner.close()  # what close saves was appended while the fence allowed it


class FencedArchive:
    """An :class:`archive_.Archive` whose writers and removals are fenced."""

    def __init__(self, inner: archive_.Archive, fence: Fence) -> None:
        self._inner = inner
        self._fence = fence
        self.backend = inner.backend

    async def stat(self, namespace: str, name: str) -> archive_.Stat | None:
        return await self._inner.stat(namespace, name)

    def read_range(
        self,
        namespace: str,
        name: str,
        stream: protocol.Stream,
        start: int = 0,
        stop: int | None = None,
    ) -> AsyncIterator[bytes]:
        return self._inner.read_range(namespace, name, stream, start, stop)

    def follow(
        self,
        namespace: str,
        name: str,
        stream: protocol.Stream,
        start: int = 0,
        *,
        give_up: Callable[[], bool] | None = None,
    ) -> AsyncIterator[bytes]:
        return self._inner.follow(namespace, name, stream, start, give_up=give_up)

    def location(self, namespace: str, name: str) -> str:
        return self._inner.location(namespace, name)

    async def open(self, namespace: str, name: str, *, uid: str | None = None) -> archive_.Writer:
        _check(self._fence)
        return FencedWriter(await self._inner.open(namespace, name, uid=uid), self._fence)

    def finished_pod(self, namespace: str, name: str) -> str | None:
        return self._inner.finished_pod(namespace, name)

    def forget_finished(self, namespace: str, name: str, pod: str | None) -> None:
        self._inner.forget_finished(namespace, name, pod)  # memory only: no fence

    async def remove(self, namespace: str, name: str) -> None:
        _check(self._fence)
        await self._inner.remove(namespace, name)

    async def close(self) -> None:
        await self._inner.close()


_FENCED_IS_AN_ARCHIVE: type[archive_.Archive] = FencedArchive  # mypy checks the protocol
