"""The operator's bulk writes, bounded: at most so many in flight, the most urgent first.

A repository sync may owe thousands of writes, and each new scheduled job one status
write (its next run); together, unbounded, they flood the API server's queues (and the
client's connection pool) and slow each other down. Both pass through one
:class:`WriteGate`: a sync's workers each hold a slot for as long as they have writes to
make, the scheduler's status writes take one slot per write, and a waiting sync goes
before waiting status writes, so a job exists (and the repository says Ready) before
its next run is announced. While a large sync writes (its jobs, its bundle, its status:
:meth:`WriteGate.syncing`), only syncs get slots: the API server's CPU is the limit, and
2,000 announcements let in as the sync's workers ran out of jobs delayed its last
writes by seconds (``docs/benchmarks.rst``, item 9). That hold is for large syncs only
(:data:`HOLD_FROM` writes) and lapses after :data:`HOLD_MAX` seconds: every namespace's
labels and announcements pass through this gate, and one sync slowed by retries must
not starve them. Writes that must be on time (creating a scheduled execution) do not
pass through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator

HOLD_FROM = 500
"""Writes a sync plans from which it holds the gate for syncs alone while it writes."""
HOLD_MAX = 60.0
"""Seconds a sync holds the gate at the most (10,000 jobs take about 25 s)."""
SYNC = 0
"""A repository sync's worker: goes first."""
ANNOUNCE = 1
"""A status write that only tells (a job's next run): after the syncs."""
SETTLE = 2
"""A settled execution's label (overseer.operator.settling): nothing waits on it, last."""


class WriteGate:
    """At most ``limit`` holders at once; waiters served by priority, then in order."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a write gate needs a limit of at least 1, not {limit}")
        self.limit = limit
        self._busy = 0
        self._order = itertools.count()
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._syncing = 0

    @property
    def busy(self) -> int:
        """Slots held now."""
        return self._busy

    @contextlib.asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        """Hold one slot for the block (lower ``priority`` values are served first)."""
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    @contextlib.asynccontextmanager
    async def syncing(self, most: float = HOLD_MAX) -> AsyncIterator[None]:
        """Let only :data:`SYNC` holders through while the block runs, ``most`` seconds at
        the most."""
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._syncing -= 1
                self._grant()

        self._syncing += 1
        lapse = asyncio.get_running_loop().call_later(most, release)
        try:
            yield
        finally:
            lapse.cancel()
            release()

    def _held_back(self, priority: int) -> bool:
        return priority != SYNC and self._syncing > 0

    async def _acquire(self, priority: int) -> None:
        if self._busy < self.limit and not self._waiting and not self._held_back(priority):
            self._busy += 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # granted, then cancelled before it ran: pass it on
            raise

    def _release(self) -> None:
        self._busy -= 1
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self._busy < self.limit:
            if self._held_back(self._waiting[0][0]):
                return  # the most urgent waiter is held back: so is every later one
            _, _, granted = heapq.heappop(self._waiting)
            if not granted.done():  # a cancelled waiter is skipped
                self._busy += 1
                granted.set_result(None)


def holding(gate: WriteGate | None, writes: int) -> contextlib.AbstractAsyncContextManager[None]:
    """:meth:`WriteGate.syncing` for a sync of ``writes`` writes, if that is large enough."""
    if gate is None or writes < HOLD_FROM:
        return contextlib.nullcontext()
    return gate.syncing()
