"""A fix to kopf, applied at start-up: its start with indexes is quadratic in the objects.

With an index (``@kopf.index``: Overseer has two), kopf holds every object's handlers
until every object is indexed: each object listed adds a toggle to one
:class:`kopf._cogs.aiokits.aiotoggles.ToggleSet` and drops it once indexed, and every
object's worker waits on that set's condition for all of them to be dropped. Adding or
dropping a toggle wakes every waiter (``notify_all``), though only the last drop changes
what they wait for: 20,000 objects (10,000 jobs and 10,000 executions) made 10^8 wake-ups,
several minutes of CPU at full load before the first handler ran, on the 2-core machine of
``docs/benchmarks.rst`` ("Scale").

:func:`apply` makes adding and dropping toggles wake the waiters only when the set's own
state (``is_on()``) changes. Nothing else waits on that condition but a
:class:`~kopf._cogs.aiokits.aiotoggles.Toggle` of the set, whose own state adding or
dropping others never changes, so every waiter still wakes when its condition turns true.
Where kopf's private module is not as expected (another version), nothing is changed.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


def apply() -> bool:
    """Patch kopf's ToggleSet (once); False when kopf's internals are not as expected."""
    try:
        aiotoggles: Any = importlib.import_module("kopf._cogs.aiokits.aiotoggles")
    except ImportError:
        return False
    toggle_set: Any = aiotoggles.ToggleSet
    if getattr(toggle_set, "_overseer_fixed", False):
        return True
    needed = ("make_toggle", "drop_toggle", "drop_toggles", "is_on")
    if not all(hasattr(toggle_set, name) for name in needed) or not hasattr(aiotoggles, "Toggle"):
        log.warning("kopf's ToggleSet is not as expected: its start stays quadratic")
        return False

    async def make_toggle(self: Any, __val: bool = False, *, name: str | None = None) -> Any:
        toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            if self.is_on() != before:
                self._condition.notify_all()
        return toggle

    async def drop_toggle(self: Any, toggle: Any) -> None:
        await drop_toggles(self, [toggle])

    async def drop_toggles(self: Any, toggles: Iterable[Any]) -> None:
        async with self._condition:
            before = self.is_on()
            self._toggles.difference_update(toggles)
            if self.is_on() != before:
                self._condition.notify_all()

    toggle_set.make_toggle = make_toggle
    toggle_set.drop_toggle = drop_toggle
    toggle_set.drop_toggles = drop_toggles
    toggle_set._overseer_fixed = True
    return True
