"""How a repository sync paces its writes: each body encoded once, a bounded number in
flight, a write the API server could not take now sent again after a backoff.

Pure: :mod:`overseer.operator.repository_writes` carries the writes out and asks
:func:`plan_retry` after each failed one. Every write of a sync is idempotent (a
server-side apply, a creation that counts 409 as done, a deletion that counts 404 as
done), so sending one again after a lost answer is safe.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Mapping
from typing import Any

from overseer.core import backoff

DEFAULT_CONCURRENCY = 8
"""Writes in flight at once: one at a time leaves the API server idle between round
trips; a few keep it busy without flooding its priority-and-fairness queues (8 is what
``kubectl`` users reach for with ``xargs -P``; more bought nothing on 2 cores)."""

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Overloaded (429: priority and fairness refused it), or failing for now (5xx)."""


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Backoff for writes the API server could not take now: ``first``, doubling, capped
    at ``ceiling``, shortened by up to ``jitter``; given up after ``attempts`` failures in
    a row (the sync then fails, and is retried as a whole with the sync's own backoff)."""

    first: float = 0.5
    ceiling: float = 30.0
    jitter: float = 0.2
    attempts: int = 6


DEFAULT_RETRY = RetryPolicy()


def plan_retry(
    status: int | None,
    failures: int,
    retry_after: float | None = None,
    policy: RetryPolicy = DEFAULT_RETRY,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before sending a failed write again, or None to give up.

    ``status`` is the HTTP status of the answer (None: no answer, the connection failed or
    timed out); ``failures`` how many times this write failed before this one (0 for its
    first failure); ``retry_after`` the server's ``Retry-After`` in seconds, a lower bound
    up to the ceiling. Any other status (400, 403, 409, 422...) is the caller's to report.
    """
    if status is not None and status not in RETRYABLE_STATUSES:
        return None
    if failures + 1 >= policy.attempts:
        return None
    wait = backoff.delay(
        failures, first=policy.first, ceiling=policy.ceiling, jitter=policy.jitter, rand=rand
    )
    if retry_after is not None:
        wait = max(wait, min(retry_after, policy.ceiling))
    return wait


def plan_workers(writes: int, concurrency: int) -> int:
    """How many workers carry out ``writes`` writes: no more than there are writes."""
    if concurrency < 1:
        raise ValueError(f"the write concurrency is at least 1, not {concurrency}")
    return min(max(writes, 0), concurrency)


def encode(body: Mapping[str, Any]) -> bytes:
    """A body as the API server reads it: compact JSON, UTF-8 (JSON is also YAML, which a
    server-side apply's ``application/apply-patch+yaml`` body is)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
