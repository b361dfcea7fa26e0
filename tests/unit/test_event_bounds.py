"""Bounding an execution's custom events (issue 11, item 7)."""

from __future__ import annotations

from overseer.core import event_bounds
from overseer_library import protocol


def event(seq: int, data: protocol.JSONValue = None) -> protocol.Event:
    return protocol.Event(seq, "tick", data, 1700000000.0 + seq)


def test_events_past_the_count_are_counted_not_kept() -> None:
    kept = event_bounds.KeptFrames(event_bounds.EventLimits(max_events=3))
    assert kept.add(protocol.Start(1, 7, "job", 1700000000.0))
    news = [kept.add(event(seq)) for seq in range(2, 12)]
    assert news == [True] * 3 + [False] * 7
    assert kept.add(protocol.Exit(12, 0, None, 1700000100.0))
    assert kept.dropped == 7
    assert [f.seq for f in kept.values()] == [1, 2, 3, 4, 12]
    assert kept.ended


def test_a_log_read_again_counts_nothing_twice() -> None:
    kept = event_bounds.KeptFrames(event_bounds.EventLimits(max_events=1))
    frames = [event(1), event(2), event(3)]
    for frame in frames + frames:  # a rotated log is read again from its start
        kept.add(frame)
    assert kept.dropped == 2
    assert len(kept.values()) == 1


def test_data_over_its_bound_keeps_a_marker_and_the_total_is_bounded() -> None:
    limits = event_bounds.EventLimits(max_events=100, max_data_bytes=100, max_total_bytes=250)
    kept = event_bounds.KeptFrames(limits)
    assert kept.add(event(1, "x" * 500))
    assert kept.values()[0].data == {"truncated": True, "bytes": 502}  # type: ignore[union-attr]
    assert kept.add(event(2, "y" * 90)) and kept.add(event(3, "z" * 90))
    assert not kept.add(event(4, "w" * 90))  # 250 bytes of data in all
    assert kept.dropped == 1


def test_frames_the_status_never_reads_are_not_kept() -> None:
    kept = event_bounds.KeptFrames()
    for seq in range(1, 1001):
        kept.add(protocol.Signal(seq, 15, "requested", 1700000000.0))
        kept.add(protocol.Log(seq + 1000, "info", "chatter", 1700000000.0))
    kept.add(protocol.Log(3000, "error", "first", 1700000000.0))
    kept.add(protocol.Log(3001, "error", "last", 1700000000.0))
    assert kept.values() == [protocol.Log(3001, "error", "last", 1700000000.0)]
    assert kept.dropped == 0


def test_custom_events_of_a_status_are_capped_keeping_start_and_end() -> None:
    events = ["start", *[f"c{i}" for i in range(5)], "complete"]
    flags = [e not in ("start", "complete") for e in events]
    kept, cut = event_bounds.bound_custom_events(events, flags, 2)
    assert kept == ["start", "c0", "c1", "complete"]
    assert cut == 3
