"""Who changed what through the API: the Kubernetes Event that records it, built purely.

The change itself is recorded on the resource it changed too (an annotation or a spec
field the GET routes show); the Event makes it visible to ``kubectl describe`` and
``kubectl get events`` with the resource's other events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

COMPONENT = "overseer-api"
"""The Events' source and reporting component."""
MAX_MESSAGE = 1024


def build_event(
    involved: Mapping[str, Any], reason: str, message: str, *, who: str, now: datetime
) -> dict[str, Any]:
    """A ``Normal`` core/v1 Event about ``involved`` (an object body) saying ``who`` did it.

    Its name is the object's with the time in nanoseconds (hex), as kubectl's are.
    """
    meta = involved["metadata"]
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # metav1.Time: seconds
    nanos = int(now.timestamp() * 1_000_000) * 1000
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{nanos:x}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": f"{message} (by {who})"[:MAX_MESSAGE],
        "type": "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
