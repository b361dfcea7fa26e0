"""Hand memory the process has freed back to the system: glibc's ``malloc_trim``, now and then.

A restart lists every job and execution (20,000 objects at 10,000 of each) and a sync
builds a body per job: Python frees what those bursts made, but glibc keeps the freed
pages of its heaps mapped, so the RSS stays where the burst left it. ``malloc_trim(0)``
returns every free page (``MADV_DONTNEED``); it costs milliseconds and changes nothing
else. Where the C library is not glibc (musl, macOS), it is not there: nothing is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

INTERVAL = 30.0
"""Seconds between two trims."""

Trim = Callable[[], object]


def find_trim() -> Trim | None:
    """glibc's ``malloc_trim(0)`` as a function; None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return lambda: function(0)


class Trimmer:
    """Trims every ``interval`` seconds in the event loop, until closed."""

    def __init__(self, trim: Trim | None, interval: float = INTERVAL) -> None:
        self._trim = trim
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the rounds (in the running event loop); no-op without a trim function."""
        if self._trim is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="memory trim")

    async def _run(self) -> None:
        assert self._trim is not None
        while True:
            await asyncio.sleep(self._interval)
            try:
                self._trim()
            except Exception:  # never worth stopping the operator for
                log.exception("malloc_trim failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
