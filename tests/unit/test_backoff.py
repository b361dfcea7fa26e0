"""The one backoff formula: doubling, the cap, jitter's bounds, and bad arguments."""

from __future__ import annotations

import pytest

from overseer.core import backoff


def test_the_delay_doubles_from_the_first() -> None:
    delays = [backoff.delay(n, first=5.0, ceiling=300.0) for n in range(5)]
    assert delays == [5.0, 10.0, 20.0, 40.0, 80.0]


def test_the_delay_stops_at_the_ceiling() -> None:
    assert backoff.delay(6, first=5.0, ceiling=300.0) == 300.0
    assert backoff.delay(7, first=5.0, ceiling=300.0) == 300.0


def test_a_huge_failure_count_neither_overflows_nor_passes_the_ceiling() -> None:
    assert backoff.delay(10**6, first=5.0, ceiling=300.0) == 300.0
    assert backoff.delay(10**6, first=1.0, ceiling=1e300) == 2.0**backoff.MAX_DOUBLINGS


def test_a_negative_failure_count_is_the_first_retry() -> None:
    assert backoff.delay(-3, first=2.0, ceiling=10.0) == 2.0


@pytest.mark.parametrize("drawn", [0.0, 0.25, 0.5, 0.999, 1.0])
def test_jitter_only_shortens_and_by_at_most_its_fraction(drawn: float) -> None:
    seconds = backoff.delay(3, first=1.0, ceiling=60.0, jitter=0.2, rand=lambda: drawn)
    assert 8.0 * 0.8 <= seconds <= 8.0
    assert seconds == pytest.approx(8.0 * (1 - 0.2 * drawn))


@pytest.mark.parametrize("drawn", [-5.0, 7.0])
def test_a_random_source_out_of_range_is_clamped(drawn: float) -> None:
    seconds = backoff.delay(0, first=10.0, ceiling=60.0, jitter=0.5, rand=lambda: drawn)
    assert 5.0 <= seconds <= 10.0


def test_jitter_applies_to_the_capped_delay() -> None:
    seconds = backoff.delay(20, first=1.0, ceiling=100.0, jitter=0.5, rand=lambda: 1.0)
    assert seconds == 50.0


def test_no_jitter_never_draws() -> None:
    def refuse() -> float:
        raise AssertionError("drew a random number without jitter")

    assert backoff.delay(1, first=1.0, ceiling=4.0, rand=refuse) == 2.0


@pytest.mark.parametrize(
    ("first", "ceiling", "jitter"),
    [(0.0, 1.0, 0.0), (-1.0, 1.0, 0.0), (2.0, 1.0, 0.0), (1.0, 2.0, -0.1), (1.0, 2.0, 1.5)],
)
def test_bad_arguments_are_refused(first: float, ceiling: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        backoff.delay(0, first=first, ceiling=ceiling, jitter=jitter)
