"""Leader election: only the operator that holds its Leases acts; a deposed one stops first.

An operator contends for the Lease ``overseer-operator`` of every namespace it watches
(of ``OVERSEER_LEASE_NAMESPACE`` when it watches the whole cluster) and leads only while
it holds all of them. Leases are taken in sorted order, so two operators whose namespace
lists overlap never hold one each of two they both want. The decisions are
:mod:`overseer.core.leases`; this module reads and writes the Leases through its own
client (never the fenced one the reactions use).

:meth:`Elector.fence` is the check every write of the leader makes first (the Kubernetes
client, the archive, webhook sends): it raises :class:`errors.NotLeaderError` once
``renew_deadline`` seconds have passed since the last renewal started, by the monotonic
clock, whether or not the renewing task has run since. That moment comes before any
other candidate may take the Lease (``duration`` after it *saw* that renewal).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from overseer import errors, kube_client
from overseer.core import leases

log = logging.getLogger(__name__)

LABELS = {leases.COMPONENT_LABEL: "operator-lease"}


def new_identity(host: str) -> str:
    """A holder identity unique to this process: a restarted one is a new candidate."""
    return f"{host}_{uuid.uuid4().hex[:12]}"


@dataclasses.dataclass(frozen=True)
class _Blocked:
    """Why this round did not end with every Lease held."""

    message: str
    taken: bool
    """Another candidate holds (or just wrote) the Lease: a leader stops at once."""


class _Lock:
    """One Lease: what this candidate last saw of it, and when its last renewal started."""

    def __init__(self, namespace: str, name: str) -> None:
        self.namespace = namespace
        self.name = name
        self.seen: leases.Record | None = None
        self.seen_at = 0.0
        self.renewed_at: float | None = None

    def __str__(self) -> str:
        return f"Lease {self.namespace}/{self.name}"


class Elector:
    """Acquires and renews this process's Leases; says whether it may act."""

    def __init__(
        self,
        client: kube_client.KubeClient,
        locks: Sequence[tuple[str, str]],
        identity: str,
        timing: leases.Timing,
    ) -> None:
        self._client = client
        self._locks = [_Lock(ns, name) for ns, name in sorted(set(locks))]
        self.identity = identity
        self.timing = timing
        self.valid_until = 0.0
        """Monotonic time until which this process may act (0: it does not lead)."""

    @property
    def leading(self) -> bool:
        return time.monotonic() < self.valid_until

    def fence(self) -> None:
        """Raise :class:`errors.NotLeaderError` unless this process may act now."""
        if not self.leading:
            msg = "this operator does not hold its Lease: the leader acts instead"
            raise errors.NotLeaderError(msg)

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Try every ``retry_period`` until all Leases are held (True) or ``stop`` is set."""
        waiting_for = ""
        while not stop.is_set():
            blocked = await self._round()
            if blocked is None:
                log.info("leading: %s holds %s", self.identity, ", ".join(map(str, self._locks)))
                return True
            if blocked.message != waiting_for:
                log.info("standing by (%s): %s", self.identity, blocked.message)
                waiting_for = blocked.message
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.timing.retry_period)
        return False

    async def expired(self) -> None:
        """Return once this process may no longer act (run :meth:`renew` meanwhile)."""
        # A clock, not an Event: validity ends by itself when no renewal comes.
        while (remaining := self.valid_until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(remaining, self.timing.retry_period))
        log.warning("deposed: %s no longer holds its Lease(s); stopping", self.identity)

    async def release(self) -> None:
        """Give the Leases up (after acting stopped), so that a candidate takes them at once."""
        self.valid_until = 0.0
        for lock in self._locks:
            if lock.renewed_at is None:
                continue
            lock.renewed_at = None
            try:
                await asyncio.wait_for(self._release(lock), self.timing.retry_period)
                log.info("released %s", lock)
            except (errors.KubeError, TimeoutError) as error:
                log.warning("%s not released (it expires by itself): %s", lock, error)

    async def _release(self, lock: _Lock) -> None:
        body = await self._client.get("Lease", lock.namespace, lock.name)
        record = leases.parse_lease(body) if body is not None else None
        if record is None or record.holder != self.identity:
            return
        released = leases.build_lease(
            lock.namespace,
            lock.name,
            "",
            duration=1,
            now=datetime.now(UTC),
            previous=record,
            labels=LABELS,
        )
        await self._client.replace(released)

    async def renew(self) -> None:
        """Renew every ``retry_period`` while leading; return when another took a Lease."""
        while True:
            started = time.monotonic()
            blocked = await self._round()
            if blocked is not None and blocked.taken:
                log.warning("%s", blocked.message)
                self.valid_until = 0.0  # another holder wrote it: stop now, not at the deadline
                return
            await asyncio.sleep(max(0.0, self.timing.retry_period - (time.monotonic() - started)))

    async def _round(self) -> _Blocked | None:
        """One attempt on each Lease in order; None when all are held, else what blocks."""
        for lock in self._locks:
            try:
                # asyncio.timeout, not wait_for: no task of its own, which kopf (running
                # meanwhile) would re-raise the error of when it stops.
                async with asyncio.timeout(self.timing.renew_deadline / 2):
                    blocked = await self._try(lock)
            except (errors.KubeError, TimeoutError) as error:
                blocked = _Blocked(f"{lock}: {error or 'no answer in time'}", taken=False)
            if blocked is not None:
                self._update_validity()
                return blocked
        self._update_validity()
        return None

    async def _try(self, lock: _Lock) -> _Blocked | None:
        started = time.monotonic()
        body = await self._client.get("Lease", lock.namespace, lock.name)
        record = leases.parse_lease(body) if body is not None else None
        if record is None or lock.seen is None or record.version != lock.seen.version:
            lock.seen, lock.seen_at = record, time.monotonic()
        step = leases.plan_step(
            record, self.identity, unchanged_for=time.monotonic() - lock.seen_at
        )
        if step is leases.Step.WAIT:
            assert record is not None
            lock.renewed_at = None
            return _Blocked(f"{lock} held by {record.holder}", taken=True)
        written = await self._write(lock, record)
        if written is None:
            lock.renewed_at = None
            return _Blocked(f"{lock} written by another candidate meanwhile", taken=True)
        lock.seen, lock.seen_at, lock.renewed_at = leases.parse_lease(written), started, started
        return None

    async def _write(self, lock: _Lock, record: leases.Record | None) -> dict[str, Any] | None:
        body = leases.build_lease(
            lock.namespace,
            lock.name,
            self.identity,
            duration=self.timing.duration,
            now=datetime.now(UTC),
            previous=record,
            labels=LABELS,
        )
        if record is None:
            return await self._client.create(body)
        return await self._client.replace(body)

    def _update_validity(self) -> None:
        renewed = [lock.renewed_at for lock in self._locks]
        if any(at is None for at in renewed):
            self.valid_until = 0.0
        else:
            self.valid_until = min(at for at in renewed if at is not None) + (
                self.timing.renew_deadline
            )
