"""kopf's start with indexes: adding and dropping toggles wakes the waiters only when it matters."""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits import aiotoggles

from overseer.operator import kopf_fixes


async def test_waiters_wake_once_when_the_last_object_is_indexed() -> None:
    assert kopf_fixes.apply()
    indexed = aiotoggles.ToggleSet(all)
    wakes = 0
    notify_all = indexed._condition.notify_all

    def counting() -> None:
        nonlocal wakes
        wakes += 1
        notify_all()

    indexed._condition.notify_all = counting  # type: ignore[method-assign]
    # Given 2,000 objects listed, each a toggle, each worker waiting for all of them
    toggles = [await indexed.make_toggle(name=f"object {n}") for n in range(2000)]
    waiters = [asyncio.create_task(indexed.wait_for(True)) for _ in range(2000)]
    await asyncio.sleep(0)
    # When all but one are indexed, nobody is done
    for toggle in toggles[:-1]:
        await indexed.drop_toggle(toggle)
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    # Then the last one wakes every waiter, and they are done
    await indexed.drop_toggles(toggles[-1:])
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert indexed.is_on()
    assert wakes <= 2  # kopf woke all 2,000 waiters for each of the 4,000 changes


async def test_a_waiter_for_off_still_wakes_when_a_toggle_turns_the_set_off() -> None:
    assert kopf_fixes.apply()
    paused = aiotoggles.ToggleSet(any)
    waiter = asyncio.create_task(paused.wait_for(True))
    await asyncio.sleep(0)
    toggle = await paused.make_toggle(True, name="a pause")
    await asyncio.wait_for(waiter, timeout=1)
    resumed = asyncio.create_task(paused.wait_for(False))
    await asyncio.sleep(0)
    await paused.drop_toggle(toggle)
    await asyncio.wait_for(resumed, timeout=1)


async def test_a_toggle_of_the_set_still_wakes_its_own_waiters() -> None:
    assert kopf_fixes.apply()
    indexed = aiotoggles.ToggleSet(all)
    toggle = await indexed.make_toggle(name="one")
    waiter = asyncio.create_task(toggle.wait_for(True))
    await asyncio.sleep(0)
    await indexed.make_toggle(name="another")
    await toggle.turn_to(True)
    await asyncio.wait_for(waiter, timeout=1)
