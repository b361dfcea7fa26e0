"""Backoff: how long to wait after a number of failures in a row.

One formula for every retry loop of the operator (repository syncs, the output follower,
webhook lanes, execution observations, admissions, schedules) and for webhook
deliveries: ``first`` doubled per failure, capped at ``ceiling``, optionally shortened by
jitter. Pure: the random source is a parameter.
"""

from __future__ import annotations

import random
from collections.abc import Callable

MAX_DOUBLINGS = 62
"""Past this many doublings every sensible ceiling is reached; stops 2**n overflowing a float."""


def delay(
    failures: int,
    *,
    first: float,
    ceiling: float,
    jitter: float = 0.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after ``failures`` failures in a row (0 means the first retry).

    ``first * 2**failures`` capped at ``ceiling``; ``jitter`` is the fraction the delay may
    shrink by (0.2: anywhere from 80% to 100% of it), drawn from ``rand`` (0 to 1).
    """
    if first <= 0 or ceiling < first:
        raise ValueError(f"backoff needs 0 < first <= ceiling, not {first} and {ceiling}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"backoff jitter is a fraction from 0 to 1, not {jitter}")
    doublings = min(max(failures, 0), MAX_DOUBLINGS)
    seconds = min(ceiling, first * 2.0**doublings)
    if jitter:
        seconds *= 1.0 - jitter * min(max(rand(), 0.0), 1.0)
    return seconds
