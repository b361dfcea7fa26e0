"""The operator hands freed memory back to the system (glibc's malloc_trim) now and then."""

from __future__ import annotations

import asyncio
import platform

import pytest

from overseer.operator import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_has_malloc_trim_and_it_runs() -> None:
    trim = memory.find_trim()
    assert trim is not None
    assert trim() in (0, 1)  # 1: memory was released, 0: there was none to release


async def test_the_trimmer_trims_at_its_interval_until_closed() -> None:
    calls: list[int] = []
    trimmer = memory.Trimmer(lambda: calls.append(1), interval=0.01)
    trimmer.start()
    await asyncio.sleep(0.1)
    await trimmer.close()
    seen = len(calls)
    assert seen >= 3
    await asyncio.sleep(0.05)
    assert len(calls) == seen  # closed: no more


async def test_a_failing_trim_does_not_stop_the_rounds() -> None:
    calls: list[int] = []

    def trim() -> None:
        calls.append(1)
        raise OSError("no")

    trimmer = memory.Trimmer(trim, interval=0.01)
    trimmer.start()
    await asyncio.sleep(0.08)
    await trimmer.close()
    assert len(calls) >= 2


async def test_without_malloc_trim_nothing_runs() -> None:
    trimmer = memory.Trimmer(None, interval=0.01)
    trimmer.start()
    await trimmer.close()
