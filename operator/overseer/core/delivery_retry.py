"""When a failing webhook delivery is tried again, and when it is given up.

Exponential backoff with jitter (the one formula, :mod:`overseer.core.backoff`), capped,
for as long as the *horizon* allows, counted from when the run of attempts began (its
first attempt, or its replay); the receiver's ``Retry-After`` is a lower bound.
The adapter (:mod:`overseer.webhooks`) asks after each failed attempt.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from overseer.core import backoff


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``first``, doubling, capped at ``max_delay``, minus jitter.

    A failing delivery is tried again for as long as it takes, up to ``horizon`` after
    its run of attempts began (a count of attempts would give up on a receiver down for
    an hour after a few minutes). ``jitter`` is the fraction a delay may shrink by.
    """

    first: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=5)
    horizon: timedelta = timedelta(hours=24)
    jitter: float = 0.2
    max_retry_after: timedelta = timedelta(hours=1)


DEFAULT_RETRY = RetryPolicy()


def next_attempt(
    attempts: int,
    now: datetime,
    *,
    since: datetime | None = None,
    policy: RetryPolicy = DEFAULT_RETRY,
    retry_after: timedelta | None = None,
    rand: Callable[[], float] = random.random,
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, or None to give up.

    ``since`` is when the run of attempts began (the horizon counts from it; ``now``
    when unknown); ``retry_after`` the receiver's Retry-After, honoured as a lower bound
    up to ``max_retry_after``.
    """
    delay = backoff.delay(
        attempts - 1,
        first=policy.first.total_seconds(),
        ceiling=policy.max_delay.total_seconds(),
        jitter=policy.jitter,
        rand=rand,
    )
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after).total_seconds())
    when = now + timedelta(seconds=delay)
    if when - (since or now) > policy.horizon:
        return None
    return when


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds or an HTTP date) as a delay; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))
