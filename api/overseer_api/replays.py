"""Replay a webhook delivery: ``POST /jobs/{name}/{id}/deliveries/{delivery}``.

A replay resets one record of ``status.deliveries`` to owed, due now
(:func:`overseer.core.delivery_records.replay`); the operator's delivery lane for that URL
sees it and sends the event again under the ``webhook-id`` it was first sent with. The
status is written as a merge patch guarded by the execution's ``resourceVersion``, so a
record the operator wrote meanwhile is never undone: the API reads the execution again
and retries. Who asked is recorded in a Kubernetes Event, as for every other action.

A settled execution has left the operator's watch (its ``overseer.dev/settled`` label,
:mod:`overseer.core.settlement`): the label is removed right after the status is
written, so the operator sees the execution again, with the delivery owed. (A status
write cannot change labels, and the other order would let the operator label it settled
again before the reset.) Should the second write fail, the caller gets the error and
replays again: the reset is written once more and the label removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from overseer import errors
from overseer.core import delivery_records, settlement, webhooks
from overseer.crd import base
from overseer.crd import execution as execution_
from overseer_api import actions, auth, cache

Body = dict[str, Any]
ATTEMPTS = 5
"""Writes tried while the operator keeps changing the execution's status."""


class StatusWriter(Protocol):
    """What a replay needs of :class:`overseer.kube.Kube` besides ``actions.Writer``."""

    async def patch_status_unchanged(
        self,
        kind: str,
        namespace: str,
        name: str,
        version: str,
        status: Mapping[str, Any],
    ) -> dict[str, Any] | None: ...


class _Kube(actions.Writer, StatusWriter, Protocol):
    """Both."""


async def replay(
    kube: _Kube, store: cache.Cache, execution: Body, delivery: str, caller: auth.Caller
) -> tuple[Body, execution_.Delivery]:
    """Reset delivery ``delivery`` of ``execution`` to owed; the execution and the record.

    Raises DeliveryNotFoundError (404) when the execution has no delivery with that id,
    ConflictError (409) when its status kept changing under every attempt.
    """
    kind, meta = execution_.KIND.kind, execution["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    for _ in range(ATTEMPTS):
        current = await kube.get(kind, namespace, name)
        if current is None:
            raise errors.ExecutionNotFoundError(f"execution {name} no longer exists")
        records = [
            execution_.Delivery.model_validate(d)
            for d in (current.get("status") or {}).get("deliveries") or ()
        ]
        replayed = delivery_records.replay(records, delivery, datetime.now(UTC))
        status = {"deliveries": [base.to_body(d) for d in replayed]}
        version = str(current["metadata"].get("resourceVersion") or "")
        patched = await kube.patch_status_unchanged(kind, namespace, name, version, status)
        if patched is not None:
            patched = await _unsettle(kube, patched)
            store.put(patched)
            record = next(d for d in replayed if delivery_records.delivery_id(d) == delivery)
            message = (
                f"replay of the {record.event_id!r} delivery to "
                f"{webhooks.display_url(record.url)} (replay {record.replays})"
            )
            await actions.record(kube, patched, "WebhookReplayRequested", message, caller)
            return patched, record
    msg = "the execution's deliveries kept changing while the replay was written; retry"
    raise errors.ConflictError(msg)


async def _unsettle(kube: _Kube, execution: Body) -> Body:
    """``execution`` back in the operator's watch, if it had left it as settled."""
    if not settlement.is_labelled(execution):
        return execution
    meta = execution["metadata"]
    kind = execution_.KIND.kind
    return await kube.patch_merge(kind, meta["namespace"], meta["name"], settlement.UNSETTLE)
