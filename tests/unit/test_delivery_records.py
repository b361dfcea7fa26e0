"""Delivery records only move forward; each URL is a lane that goes in event order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from overseer import errors
from overseer.core import delivery_records
from overseer.core import webhooks as core
from overseer.crd import execution

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
A = "https://a.example.com/hook"
B = "https://b.example.com/hook"


def record(event: str, status: str, attempts: int, url: str = A, **more: Any) -> execution.Delivery:
    return execution.Delivery(event_id=event, url=url, status=status, attempts=attempts, **more)


def test_a_new_record_is_appended_and_pending_records_advance() -> None:
    first = record("start", "Pending", 1, next_attempt_at=T0)
    merged = delivery_records.merge_records([], [first])
    assert merged == [first]
    second = record("start", "Pending", 2, next_attempt_at=T0 + timedelta(seconds=2))
    assert delivery_records.merge_records(merged, [second]) == [second]
    delivered = record("start", "Delivered", 3, delivered_at=T0)
    assert delivery_records.merge_records([second], [delivered]) == [delivered]


def test_records_never_move_back() -> None:
    delivered = record("start", "Delivered", 1, delivered_at=T0)
    # An older Pending record (a write that lost a race) changes nothing
    assert delivery_records.merge_records([delivered], [record("start", "Pending", 2)]) == [
        delivered
    ]
    # Nor does a second delivery of the same event (a duplicate after a restart)
    again = record("start", "Delivered", 1, delivered_at=T0 + timedelta(minutes=1))
    assert delivery_records.merge_records([delivered], [again]) == [delivered]
    failed = record("fail", "Failed", 1, last_error="refused")
    assert delivery_records.merge_records([failed], [record("fail", "Delivered", 2)]) == [failed]
    pending = record("start", "Pending", 3)
    assert delivery_records.merge_records([pending], [record("start", "Pending", 2)]) == [pending]


def test_records_keep_their_order_one_per_event_and_url() -> None:
    current = [record("start", "Delivered", 1), record("start", "Pending", 1, url=B)]
    merged = delivery_records.merge_records(current, [record("complete", "Delivered", 1)])
    assert [(r.event_id, r.url) for r in merged] == [("start", A), ("start", B), ("complete", A)]


SPEC = {
    "job": "deploy-1a2b3c",
    "definition": {
        "name": "Deploy it",
        "hooks": {"start": A, "complete": [A, B], "deploying": [B]},
    },
}


def status(events: list[str], deliveries: list[execution.Delivery]) -> dict[str, Any]:
    return {
        "events": [{"id": e, "status": e, "time": T0.isoformat()} for e in events],
        "deliveries": [d.model_dump(mode="json", by_alias=True) for d in deliveries],
    }


def test_each_lane_sends_its_first_owed_event_first() -> None:
    owed = delivery_records.plan_from_status(
        SPEC,
        status(
            ["start", "deploying", "complete"],
            [record("start", "Pending", 1, next_attempt_at=T0 + timedelta(seconds=5))],
        ),
    )
    head = delivery_records.next_in_lane(owed, A)
    assert head is not None and head.event.status == "start"
    # the head waits for its next attempt, and complete waits behind it
    assert delivery_records.wait_until(head, T0) == T0 + timedelta(seconds=5)
    assert delivery_records.wait_until(head, T0 + timedelta(seconds=5)) is None
    other = delivery_records.next_in_lane(owed, B)
    assert other is not None and other.event.status == "deploying"
    assert delivery_records.wait_until(other, T0) is None
    assert delivery_records.next_in_lane(owed, "https://c.example.com/") is None


def test_hooks_and_job_name_are_read_from_the_frozen_definition() -> None:
    assert delivery_records.hooks_of(SPEC) == {
        "start": [A],
        "complete": [A, B],
        "deploying": [B],
    }
    assert delivery_records.job_name(SPEC) == "Deploy it"
    assert delivery_records.hooks_of({"definition": {"name": "x"}}) == {}
    assert delivery_records.hooks_of({}) == {}
    assert delivery_records.plan_from_status({"definition": {"name": "x"}}, None) == []
    assert delivery_records.job_name({"job": "res-name"}) == "res-name"


def test_given_up_and_gone_are_final() -> None:
    given_up = record("start", "GivenUp", 300, last_error="gave up")
    gone = record("complete", "Gone", 1, last_error="410")
    late = [record("start", "Pending", 301), record("complete", "Pending", 2)]
    assert delivery_records.merge_records([given_up, gone], late) == [given_up, gone]


def test_a_gone_url_owes_nothing_more_for_that_execution() -> None:
    start = execution.Event(id="start", status="start", time=T0)
    done = execution.Event(id="complete", status="complete", time=T0 + timedelta(seconds=5))
    hooks = {"start": [A, B], "complete": [A, B]}
    owed = core.plan_deliveries(hooks, [start, done], [record("start", "Gone", 1, url=A)])
    assert [(o.event.id, o.url) for o in owed] == [("start", B), ("complete", B)]


def test_a_replay_resets_the_delivery_to_owed_now_with_a_new_horizon() -> None:
    # Given a delivery given up after its horizon, and one the receiver said is gone
    given_up = record("start", "GivenUp", 300, last_error="gave up", retry_since=T0)
    gone = record("complete", "Gone", 1, url=B, last_error="answered 410")
    other = record("complete", "Delivered", 1, delivered_at=T0)
    current = [given_up, other, gone]
    later = T0 + timedelta(days=3)
    # When each is replayed by its id
    replayed = delivery_records.replay(current, delivery_records.delivery_id(given_up), later)
    # Then it is Pending, due at once, its attempts counted afresh from the replay
    assert replayed == [
        record("start", "Pending", 0, retry_since=later, replays=1),
        other,
        gone,
    ]
    again = delivery_records.replay(replayed, delivery_records.delivery_id(gone), later)
    assert again[2] == record("complete", "Pending", 0, url=B, retry_since=later, replays=1)
    # And the ids are stable, short and URL-safe, one per (event, URL)
    ids = {delivery_records.delivery_id(r) for r in current}
    assert len(ids) == 3 and all(i.isalnum() and len(i) == 16 for i in ids)
    # And an unknown id is refused, naming it
    with pytest.raises(errors.DeliveryNotFoundError, match="nosuchdelivery"):
        delivery_records.replay(current, "nosuchdelivery", later)


def test_a_replayed_record_then_moves_forward_again() -> None:
    replayed = delivery_records.replay(
        [record("start", "GivenUp", 300)],
        delivery_records.delivery_id(record("start", "GivenUp", 300)),
        T0,
    )
    attempt = record("start", "Delivered", 1, delivered_at=T0, retry_since=T0, replays=1)
    assert delivery_records.merge_records(replayed, [attempt]) == [attempt]
