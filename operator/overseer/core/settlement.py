"""When an execution is settled: it needs nothing more of the operator's execution watch.

Pure. The operator watches OverseerExecutions for a few reasons only: to start a new
one (create, resume), to bring a signal to a running one (update), to keep the
admission's index of executions that may still take a slot, to send the webhook
deliveries an execution owes, and to observe again (the resync) one that has not ended
or whose output is still being archived. An execution that has ended, whose output is
archived to its end (or that had none), and that owes no delivery (each Delivered,
Failed, GivenUp or Gone) needs none of them: it is *settled*. Its Job and pod, while
they last, are watched apart (by the execution label) and lead to it.

A settled execution is labelled ``overseer.dev/settled: "true"`` (:func:`plan_label`: one
merge patch, guarded by the ``resourceVersion`` it was judged at, so a status changed
meanwhile, a replayed delivery, is never labelled settled) and the operator watches
executions with :data:`WATCH_SELECTOR`: a restart lists only those not settled. The
API server then shows the labelled execution to the watch as DELETED: it has left the
watch, it is not deleted. Whatever makes it owe deliveries again (a replay) removes the
label (:data:`UNSETTLE`), and it comes back to the watch as ADDED. docs/decisions.rst,
"Settled executions leave the operator's watch".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from overseer.core import delivery_records
from overseer.crd import execution as execution_

SETTLED_LABEL = "overseer.dev/settled"
SETTLED = "true"
WATCH_SELECTOR = f"!{SETTLED_LABEL}"
"""The operator's label selector for OverseerExecutions: those not (yet) settled."""
UNSETTLE: dict[str, Any] = {"metadata": {"labels": {SETTLED_LABEL: None}}}
"""The merge patch that brings an execution back to the operator's watch."""


def ended_and_archived(status: Mapping[str, Any] | None) -> bool:
    """The execution has ended and its output is not being archived any more."""
    status = status or {}
    if status.get("phase") not in execution_.TERMINAL_PHASES:
        return False
    return (status.get("archive") or {}).get("state") != "Archiving"


def owes_deliveries(spec: Mapping[str, Any] | None, status: Mapping[str, Any] | None) -> bool:
    """Some webhook delivery is not final yet; a status that cannot be read counts as owing
    (the operator rewrites it, then judges again)."""
    try:
        return bool(delivery_records.plan_from_status(spec or {}, status))
    except pydantic.ValidationError:
        return True


def is_settled(body: Mapping[str, Any]) -> bool:
    """Ended, archived, and owing no delivery: the execution watch has nothing left to do."""
    status = body.get("status")
    return ended_and_archived(status) and not owes_deliveries(body.get("spec"), status)


def is_labelled(body: Mapping[str, Any]) -> bool:
    """The execution carries the settled label (it is out of the operator's watch)."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    return labels.get(SETTLED_LABEL) == SETTLED


def plan_label(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch that labels a settled execution; None when it is not settled, or
    labelled already. It carries the ``resourceVersion`` of ``body``: the API server
    refuses it (409) if the execution changed since, and the newer state is judged."""
    if is_labelled(body) or not is_settled(body):
        return None
    metadata = body.get("metadata") or {}
    patch: dict[str, Any] = {"labels": {SETTLED_LABEL: SETTLED}}
    if version := metadata.get("resourceVersion"):
        patch["resourceVersion"] = str(version)
    return {"metadata": patch}


def needs_unlabel(body: Mapping[str, Any]) -> bool:
    """A labelled execution that owes deliveries again: the label must go, so the operator
    watches it and sends them."""
    return is_labelled(body) and owes_deliveries(body.get("spec"), body.get("status"))
