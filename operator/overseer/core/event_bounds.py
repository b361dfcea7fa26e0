"""How much of a job's event traffic an execution keeps: bounded, with the rest counted.

Pure. A job can call ``event`` without end; every kept event costs the operator memory
(until the execution's log is read to its end), a place in ``status.events`` and a
webhook delivery per hook URL, and a status past etcd's object size can never be
written again, so the execution would never end. So, per execution:

- :class:`KeptFrames` holds the frames of one pod's log that the status is derived
  from: the first ``start`` and ``exit``, the latest error of the supervisor, and
  custom events up to :attr:`EventLimits.max_events` and
  :attr:`EventLimits.max_total_bytes` of data; an event whose data is over
  :attr:`EventLimits.max_data_bytes` keeps a marker instead of it. Events past a
  bound are counted (:attr:`KeptFrames.dropped`), not kept; other frames (``log``
  below error, ``signal``) are not needed and not kept.
- :func:`bound_custom_events` caps the custom events of a status (a retried Job's
  pods each bring their own), counting what it cuts. ``start`` and the terminal event
  are never cut.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TypeVar

from overseer_library import protocol

KIB = 1024


@dataclasses.dataclass(frozen=True)
class EventLimits:
    """Bounds on one execution's custom events (``OVERSEER_EXECUTION_MAX_EVENT*``)."""

    max_events: int = 100
    """Custom events kept in the status; later ones are counted in ``eventsDropped``."""
    max_data_bytes: int = protocol.MAX_EVENT_DATA
    """JSON bytes of one event's data; larger data is replaced by a marker."""
    max_total_bytes: int = 256 * KIB
    """JSON bytes of all kept events' data together."""


DEFAULT_EVENT_LIMITS = EventLimits()


def data_size(data: protocol.JSONValue) -> int:
    return len(protocol.dump_json(data).encode())


class KeptFrames:
    """The frames of one pod's log an execution's status needs, within the limits."""

    def __init__(self, limits: EventLimits = DEFAULT_EVENT_LIMITS) -> None:
        self._limits = limits
        self._frames: dict[int, protocol.Frame] = {}
        self._events = 0
        self._bytes = 0
        self.highest = 0
        """The highest ``seq`` offered so far (kept or not)."""
        self.dropped = 0
        """Custom events not kept because a bound was reached."""

    def add(self, frame: protocol.Frame) -> bool:
        """Offer a frame (in ``seq`` order, repeats allowed); True when it is newly kept."""
        if frame.seq in self._frames:
            return False
        fresh = frame.seq > self.highest
        self.highest = max(self.highest, frame.seq)
        if isinstance(frame, protocol.Event):
            return self._add_event(frame, fresh)
        if isinstance(frame, protocol.Start | protocol.Exit):
            if any(type(kept) is type(frame) for kept in self._frames.values()):
                return False
        elif isinstance(frame, protocol.Log) and frame.level == "error":
            for seq in [s for s, f in self._frames.items() if isinstance(f, protocol.Log)]:
                del self._frames[seq]  # only the latest error is read
        else:
            return False
        self._frames[frame.seq] = frame
        return True

    def _add_event(self, frame: protocol.Event, fresh: bool) -> bool:
        size = data_size(frame.data)
        if size > self._limits.max_data_bytes:
            marker: protocol.JSONValue = {"truncated": True, "bytes": size}
            frame = dataclasses.replace(frame, data=marker)
            size = data_size(marker)
        if (
            self._events >= self._limits.max_events
            or self._bytes + size > self._limits.max_total_bytes
        ):
            if fresh:
                self.dropped += 1
            return False
        self._events += 1
        self._bytes += size
        self._frames[frame.seq] = frame
        return True

    def values(self) -> list[protocol.Frame]:
        """The kept frames in ``seq`` order."""
        return [self._frames[seq] for seq in sorted(self._frames)]

    @property
    def ended(self) -> bool:
        """The supervisor's ``exit`` frame was read."""
        return any(isinstance(f, protocol.Exit) for f in self._frames.values())


T = TypeVar("T")


def bound_custom_events(
    events: Sequence[T], is_custom: Iterable[bool], max_events: int
) -> tuple[list[T], int]:
    """``events`` with at most ``max_events`` custom ones (the first), and how many were cut."""
    kept: list[T] = []
    custom = 0
    cut = 0
    for event, flag in zip(events, is_custom, strict=True):
        if flag:
            custom += 1
            if custom > max_events:
                cut += 1
                continue
        kept.append(event)
    return kept, cut
