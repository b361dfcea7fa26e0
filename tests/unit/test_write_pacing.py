"""How the sync paces its writes: which failures are sent again, after how long, with how
many workers, and the bytes each body is sent as."""

from __future__ import annotations

import json

import pytest

from overseer.core import write_pacing

POLICY = write_pacing.RetryPolicy(first=0.5, ceiling=30.0, jitter=0.0, attempts=6)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, None])
def test_overload_server_errors_and_lost_answers_are_sent_again(status: int | None) -> None:
    assert write_pacing.plan_retry(status, 0, policy=POLICY) == 0.5


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_a_refusal_that_would_repeat_is_reported_at_once(status: int) -> None:
    assert write_pacing.plan_retry(status, 0, policy=POLICY) is None


def test_the_wait_doubles_up_to_the_ceiling_then_the_write_is_given_up() -> None:
    waits = [write_pacing.plan_retry(429, n, policy=POLICY) for n in range(6)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, None]
    capped = write_pacing.RetryPolicy(first=20.0, ceiling=30.0, jitter=0.0, attempts=9)
    assert write_pacing.plan_retry(503, 3, policy=capped) == 30.0


def test_retry_after_is_a_lower_bound_up_to_the_ceiling() -> None:
    assert write_pacing.plan_retry(429, 0, retry_after=3.0, policy=POLICY) == 3.0
    assert write_pacing.plan_retry(429, 3, retry_after=1.0, policy=POLICY) == 4.0
    assert write_pacing.plan_retry(429, 0, retry_after=3600.0, policy=POLICY) == 30.0


def test_jitter_only_shortens_the_wait() -> None:
    jittered = write_pacing.RetryPolicy(first=1.0, ceiling=30.0, jitter=0.2, attempts=6)
    assert write_pacing.plan_retry(500, 2, policy=jittered, rand=lambda: 1.0) == pytest.approx(3.2)
    assert write_pacing.plan_retry(500, 2, policy=jittered, rand=lambda: 0.0) == 4.0


def test_no_more_workers_than_writes_nor_than_the_concurrency() -> None:
    assert write_pacing.plan_workers(10_000, 8) == 8
    assert write_pacing.plan_workers(3, 8) == 3
    assert write_pacing.plan_workers(0, 8) == 0
    with pytest.raises(ValueError, match="at least 1"):
        write_pacing.plan_workers(5, 0)


def test_a_body_is_sent_as_compact_utf8_json() -> None:
    body = {"metadata": {"name": "a"}, "spec": {"displayName": "Équipe 7", "n": [1, 2]}}
    data = write_pacing.encode(body)
    assert data == '{"metadata":{"name":"a"},"spec":{"displayName":"Équipe 7","n":[1,2]}}'.encode()
    assert json.loads(data) == body
