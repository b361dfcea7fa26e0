"""Webhook delivery records: fold attempts into ``status.deliveries``; pick what to send next.

The operator's delivery loop (:mod:`overseer.operator.deliveries`) asks two questions,
answered here without I/O:

- :func:`merge_records`: the ``status.deliveries`` list once an attempt's record is
  added. Records only move forward (Pending with more attempts, then Delivered or
  Failed, which are final), so folding an old record in never undoes a newer one, and
  a duplicate sent after an operator restart never turns Delivered back into Pending.
- :func:`next_in_lane`: the next delivery to one URL. Each URL is a lane: its events
  go in event order, so the first one owed blocks the others until it is Delivered
  or Failed; :func:`wait_until` says when it may be tried again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from overseer.core import webhooks
from overseer.crd import execution as execution_

FINAL = frozenset({"Delivered", "Failed"})


def _rank(record: execution_.Delivery) -> tuple[int, int]:
    return (1 if record.status in FINAL else 0, record.attempts)


def merge_records(
    current: Sequence[execution_.Delivery], new: Iterable[execution_.Delivery]
) -> list[execution_.Delivery]:
    """``current`` with ``new`` folded in, one record per (event, URL), in first-seen order.

    A final record (Delivered, Failed) is never replaced; a Pending one is replaced by
    a final one, or by a Pending one with more attempts.
    """
    merged = {(r.event_id, r.url): r for r in current}
    for record in new:
        key = (record.event_id, record.url)
        old = merged.get(key)
        if old is None or (old.status not in FINAL and _rank(record) > _rank(old)):
            merged[key] = record
    return list(merged.values())


def hooks_of(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """The hooks of an execution's frozen definition (``spec.definition.hooks``).

    Read leniently: an execution whose spec is invalid owes nothing (its start refuses it).
    """
    definition = spec.get("definition")
    if not isinstance(definition, Mapping):
        return {}
    hooks = definition.get("hooks")
    if not isinstance(hooks, Mapping):
        return {}
    result: dict[str, list[str]] = {}
    for status, urls in hooks.items():
        listed = [urls] if isinstance(urls, str) else urls
        if isinstance(listed, list):
            result[str(status)] = [u for u in listed if isinstance(u, str)]
    return result


def job_name(spec: Mapping[str, Any]) -> str:
    """The job's display name (its ``name`` in git), as payloads carry it."""
    definition = spec.get("definition")
    if isinstance(definition, Mapping) and isinstance(definition.get("name"), str):
        return str(definition["name"])
    return str(spec.get("job", ""))


def plan_from_status(
    spec: Mapping[str, Any], status: Mapping[str, Any] | None
) -> list[webhooks.Owed]:
    """What an execution body (its spec and status as plain dicts) still owes."""
    hooks = hooks_of(spec)
    if not hooks:
        return []
    status = status or {}
    events = [execution_.Event.model_validate(e) for e in status.get("events") or ()]
    records = [execution_.Delivery.model_validate(d) for d in status.get("deliveries") or ()]
    return webhooks.plan_deliveries(hooks, events, records)


def next_in_lane(owed: Sequence[webhooks.Owed], url: str) -> webhooks.Owed | None:
    """The first owed delivery to ``url``: the only one of its lane that may be sent."""
    return next((o for o in owed if o.url == url), None)


def wait_until(owed: webhooks.Owed, now: datetime) -> datetime | None:
    """When ``owed`` may be attempted; None if it may be now."""
    if webhooks.is_due(owed, now):
        return None
    assert owed.record is not None and owed.record.next_attempt_at is not None
    return owed.record.next_attempt_at
