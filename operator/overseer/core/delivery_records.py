"""Webhook delivery records: fold attempts into ``status.deliveries``; pick what to send next.

The operator's delivery loop (:mod:`overseer.operator.deliveries`) asks two questions,
answered here without I/O:

- :func:`merge_records`: the ``status.deliveries`` list once an attempt's record is
  added. Records only move forward (Pending with more attempts, then Delivered or
  Failed, which are final), so folding an old record in never undoes a newer one, and
  a duplicate sent after an operator restart never turns Delivered back into Pending.
- :func:`next_in_lane`: the next delivery to one URL. Each URL is a lane: its events
  go in event order, so the first one owed blocks the others until it is final
  (Delivered, Failed, GivenUp, Gone); :func:`wait_until` says when it may be tried again.

And one for the API: :func:`replay` (``POST .../deliveries/{id}``, the id being
:func:`delivery_id`) resets a delivery to owed. That is all a replay is: the operator's
lane sees a Pending record, due now, and sends it under the same ``webhook-id``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from overseer import errors
from overseer.core import webhooks
from overseer.crd import execution as execution_

FINAL = frozenset({"Delivered", "Failed", "GivenUp", "Gone"})


def _rank(record: execution_.Delivery) -> tuple[int, int]:
    return (1 if record.status in FINAL else 0, record.attempts)


def merge_records(
    current: Sequence[execution_.Delivery], new: Iterable[execution_.Delivery]
) -> list[execution_.Delivery]:
    """``current`` with ``new`` folded in, one record per (event, URL), in first-seen order.

    A final record (Delivered, Failed, GivenUp, Gone) is never replaced; a Pending one
    is replaced by a final one, or by a Pending one with more attempts. (A replay,
    which moves a record back, is :func:`replay`: it writes the list itself.)
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


def delivery_id(record: execution_.Delivery) -> str:
    """The id of one delivery (event and URL) in URLs: 16 hex digits, stable, not the URL."""
    digest = hashlib.sha256(f"{record.event_id}\0{record.url}".encode()).hexdigest()
    return digest[:16]


def replay(
    current: Sequence[execution_.Delivery], delivery: str, now: datetime
) -> list[execution_.Delivery]:
    """``current`` with delivery ``delivery`` owed again, due at once, from ``now``.

    Any state may be replayed: GivenUp, Failed or Gone once the receiver is fixed, or
    Delivered to send it again (receivers deduplicate by ``webhook-id``). Its attempts
    count afresh and its retry horizon starts at ``now``; ``replays`` counts the resets.
    Raises :class:`overseer.errors.DeliveryNotFoundError` when no record has that id.
    """
    replayed: list[execution_.Delivery] = []
    found = False
    for record in current:
        if delivery_id(record) != delivery:
            replayed.append(record)
            continue
        found = True
        reset = execution_.Delivery(
            event_id=record.event_id,
            url=record.url,
            status="Pending",
            retry_since=now,
            replays=(record.replays or 0) + 1,
        )
        replayed.append(reset)
    if not found:
        raise errors.DeliveryNotFoundError(
            f"the execution has no webhook delivery {delivery!r}; list the execution's "
            "deliveries for their ids"
        )
    return replayed
