"""The write gate: never more holders than its limit; a waiting sync before waiting
status writes, each kind in order; a waiter cancelled never holds a slot."""

from __future__ import annotations

import asyncio

import pytest

from overseer.operator import write_gate


async def test_never_more_writes_in_flight_than_the_limit() -> None:
    gate = write_gate.WriteGate(3)
    seen: list[int] = []

    async def write() -> None:
        async with gate.slot(write_gate.ANNOUNCE):
            seen.append(gate.busy)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(write() for _ in range(50)))
    assert max(seen) == 3
    assert gate.busy == 0


async def test_a_waiting_sync_goes_before_waiting_status_writes() -> None:
    gate = write_gate.WriteGate(1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot(write_gate.ANNOUNCE):
            await release.wait()

    async def write(name: str, priority: int) -> None:
        async with gate.slot(priority):
            order.append(name)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiters = [
        asyncio.create_task(write("status 1", write_gate.ANNOUNCE)),
        asyncio.create_task(write("status 2", write_gate.ANNOUNCE)),
        asyncio.create_task(write("sync 1", write_gate.SYNC)),
        asyncio.create_task(write("sync 2", write_gate.SYNC)),
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, *waiters)
    assert order == ["sync 1", "sync 2", "status 1", "status 2"]


async def test_a_cancelled_waiter_never_holds_a_slot() -> None:
    gate = write_gate.WriteGate(1)
    release = asyncio.Event()
    done: list[str] = []

    async def hold() -> None:
        async with gate.slot(write_gate.SYNC):
            await release.wait()

    async def write(name: str) -> None:
        async with gate.slot(write_gate.ANNOUNCE):
            done.append(name)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(write("cancelled"))
    after = asyncio.create_task(write("after"))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.gather(holder, after)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert done == ["after"]
    assert gate.busy == 0


async def test_a_waiter_granted_then_cancelled_passes_its_slot_on() -> None:
    gate = write_gate.WriteGate(1)
    done: list[str] = []

    async def write(name: str) -> None:
        async with gate.slot(write_gate.ANNOUNCE):
            done.append(name)

    held = gate.slot(write_gate.SYNC)
    await held.__aenter__()
    granted = asyncio.create_task(write("granted"))
    after = asyncio.create_task(write("after"))
    await asyncio.sleep(0)
    await held.__aexit__(None, None, None)  # grants "granted" its slot; it has not run yet
    granted.cancel()
    await after
    with pytest.raises(asyncio.CancelledError):
        await granted
    assert done == ["after"]
    assert gate.busy == 0


def test_a_gate_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        write_gate.WriteGate(0)


async def test_while_a_sync_is_under_way_only_syncs_are_let_through() -> None:
    gate = write_gate.WriteGate(4)
    order: list[str] = []

    async def write(name: str, priority: int) -> None:
        async with gate.slot(priority):
            order.append(name)

    async with gate.syncing():
        # Free slots, but a sync writes its jobs, its bundle and its status: an
        # announcement of a next run waits for all of it (the API server is the limit).
        announce = asyncio.create_task(write("status", write_gate.ANNOUNCE))
        settle = asyncio.create_task(write("label", write_gate.SETTLE))
        await write("sync", write_gate.SYNC)
        await asyncio.sleep(0.01)
        assert order == ["sync"]
        assert not announce.done() and not settle.done()
    await asyncio.gather(announce, settle)
    assert order == ["sync", "status", "label"]
    assert gate.busy == 0


async def test_a_hold_lapses_after_its_most_so_one_slow_sync_starves_nobody() -> None:
    gate = write_gate.WriteGate(4)
    order: list[str] = []

    async def write(name: str, priority: int) -> None:
        async with gate.slot(priority):
            order.append(name)

    # Given a sync slowed down (its writes retried with backoff) that holds the gate
    async with gate.syncing(most=0.05):
        # When a settled label waits for a slot (another namespace's execution)
        label = asyncio.create_task(write("label", write_gate.SETTLE))
        await asyncio.sleep(0.01)
        assert order == []
        # Then it goes once the hold lapses, before the sync ends
        await asyncio.wait_for(label, 1)
        assert order == ["label"]
    assert gate.busy == 0


async def test_only_a_large_sync_holds_the_gate() -> None:
    gate = write_gate.WriteGate(4)
    order: list[str] = []

    async def write(name: str, priority: int) -> None:
        async with gate.slot(priority):
            order.append(name)

    # A sync of a few jobs (the usual periodic one) lets announcements through at once
    async with write_gate.holding(gate, write_gate.HOLD_FROM - 1):
        await asyncio.wait_for(write("small", write_gate.ANNOUNCE), 1)
    # A large one holds them until it is done
    async with write_gate.holding(gate, write_gate.HOLD_FROM):
        announce = asyncio.create_task(write("large", write_gate.ANNOUNCE))
        await asyncio.sleep(0.01)
        assert order == ["small"]
    await asyncio.wait_for(announce, 1)
    assert order == ["small", "large"]
    async with write_gate.holding(None, 10_000):  # no gate: nothing to hold
        pass
