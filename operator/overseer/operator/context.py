"""What the operator's reactions to executions share: keys, the tracker, the environment.

:class:`Environment` is built from the runtime (:mod:`overseer.operator.runtime`) and
handed to every reaction of :mod:`overseer.operator.executions`, ``output``,
``signals``, ``collect``, ``admission`` and ``deliveries``; :class:`Tracker` serialises
the work on one execution in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from overseer import kube_client
from overseer.crd import execution as execution_
from overseer.operator import events, execution_accounts, signals
from overseer.operator.settings import Settings
from overseer_library import protocol

K = TypeVar("K")


class KeyedLocks(Generic[K]):
    """A lock per key, each dropped when nobody holds or waits for it (memory stays
    bounded by the work in progress, not by every key ever seen)."""

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """How many keys have a lock now."""
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclasses.dataclass(frozen=True)
class Key:
    """One execution: its namespace and resource name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class Tracker:
    """In-process coordination of executions: a lock each, and the re-checks to come.

    Only an optimisation of ordering and timing: losing it (a restart) loses nothing,
    because kopf replays every pod and Job and resumes every execution.
    """

    def __init__(self) -> None:
        self._locks: KeyedLocks[Key] = KeyedLocks()
        self._rechecks: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def hold(self, key: Key) -> contextlib.AbstractAsyncContextManager[None]:
        """Serialise work on one execution."""
        return self._locks.hold(key)

    def recheck(self, key: Key, delay: float, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run`` in ``delay`` seconds, replacing any re-check already planned."""
        self.cancel(key)

        def spawn() -> None:
            self._rechecks.pop(key, None)
            task = asyncio.ensure_future(run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop = asyncio.get_running_loop()
        self._rechecks[key] = loop.call_later(max(delay, 0.0), spawn)

    def cancel(self, key: Key) -> None:
        handle = self._rechecks.pop(key, None)
        if handle is not None:
            handle.cancel()

    def failed(self, key: Key) -> int:
        """Count one more failure in a row; return how many before it."""
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        return count

    def succeeded(self, key: Key) -> None:
        self._failures.pop(key, None)

    def close(self) -> None:
        for key in list(self._rechecks):
            self.cancel(key)
        for task in list(self._tasks):
            task.cancel()


class OutputHook(Protocol):
    """Follows executions' pod logs (``overseer.operator.output``), seen from here."""

    def frames(self, key: Key, pod: str | None) -> Sequence[protocol.Record]:
        """The frames read so far from the log of that pod of the execution."""

    def dropped(self, key: Key, pod: str | None) -> int:
        """Custom events of that pod's log not kept: over the execution's bounds."""

    def notice(
        self,
        key: Key,
        pod: Mapping[str, Any] | None,
        env: Environment,
        *,
        gone: str | None = None,
    ) -> None:
        """The execution's newest pod as just observed (None when gone): follow its log
        if its container has started and the log is not read yet. ``gone`` names the
        newest pod once it was deleted: what its log held and the archive does not is
        then lost, and said so. Must not block."""

    def hold_end(self, key: Key, pod: Mapping[str, Any] | None, now: datetime) -> datetime | None:
        """Until when an end derived from ``pod`` (the newest pod) waits for the rest of
        its log; None to say the end now. Must not block."""

    def archive(self, key: Key, pod: str | None) -> execution_.Archive | None:
        """Where the execution's output is archived and its state (Archiving while the
        log of ``pod``, its newest pod, is not read to its end); None when unknown."""

    def recorded(self, key: Key, status: execution_.ExecutionStatus) -> None:
        """``status`` was just written, or found as it is: what it carries of the archive
        need not be kept for it any more. Must not block."""

    def settled(self, key: Key, pod: str | None, gone: bool) -> bool:
        """The log of the execution's newest pod (``pod``, ``gone`` when deleted) needs no
        more reading: archived to its end, or there is no pod to read. May read files."""

    async def remove(self, key: Key) -> None:
        """Delete the execution's archived output."""

    def forget(self, key: Key) -> None:
        """The execution is gone: keep nothing of it."""


class NoOutput:
    """Follows nothing: observations derive from the pod and Job alone."""

    def frames(self, key: Key, pod: str | None) -> Sequence[protocol.Record]:
        return ()

    def dropped(self, key: Key, pod: str | None) -> int:
        return 0

    def notice(
        self,
        key: Key,
        pod: Mapping[str, Any] | None,
        env: Environment,
        *,
        gone: str | None = None,
    ) -> None:
        return None

    def hold_end(self, key: Key, pod: Mapping[str, Any] | None, now: datetime) -> datetime | None:
        return None

    def archive(self, key: Key, pod: str | None) -> execution_.Archive | None:
        return None

    def recorded(self, key: Key, status: execution_.ExecutionStatus) -> None:
        return None

    def settled(self, key: Key, pod: str | None, gone: bool) -> bool:
        return True

    async def remove(self, key: Key) -> None:
        return None

    def forget(self, key: Key) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class Environment:
    """What the reactions work with, built once at start-up."""

    client: kube_client.KubeClient
    settings: Settings
    tracker: Tracker
    post_event: events.EventPoster
    output: OutputHook = dataclasses.field(default_factory=NoOutput)
    signals: signals.SignalSender = dataclasses.field(default_factory=signals.SignalSender)
    accounts: execution_accounts.ExecutionAccounts = dataclasses.field(
        default_factory=execution_accounts.ExecutionAccounts
    )
