"""What kopf keeps of an object as its diff base (its "last handled configuration").

Pure. After handling a change, kopf writes the object's *essence* (its spec, labels and
annotations) as JSON into one annotation, and diffs the next version against it to find
what changed. Kubernetes caps all of an object's annotations at 256 KiB together, and
an execution's spec holds every parameter value (each up to the kernel's 128 KiB): a
whole essence of those does not fit, the API server refuses kopf's write (422), and
kopf never records the execution as handled.

Only what a change handler compares needs keeping. The executions' one change handler
(``signal_execution``) diffs :data:`SIGNALS_FIELD`, so an execution's diff base is that
field alone (small: a request is a signal name and a time). Every other kind keeps the
whole essence: a repository's update handler has no field, any change of it counts.
A hash would not do: kopf hands the handler the field's old and new values, and
decides from them whether it changed (docs/decisions.rst, "kopf's diff base").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from overseer.crd import base
from overseer.crd import execution as execution_

SIGNALS_FIELD = "spec.signals"
"""The field ``signal_execution`` reacts to (``@kopf.on.update(..., field=...)``)."""

FieldPath = tuple[str, ...]

DIFFED: Mapping[tuple[str, str], tuple[FieldPath, ...]] = {
    (base.GROUP, execution_.KIND.kind): (tuple(SIGNALS_FIELD.split(".")),),
}
"""By (API group, kind): the only fields its change handlers compare. Kinds absent keep all."""


def diffed_fields(
    api_version: str, kind: str, handled: Iterable[FieldPath] = ()
) -> frozenset[FieldPath] | None:
    """The fields to keep of an object of ``api_version`` and ``kind``; None: all of them.

    ``handled``: the fields kopf's handlers of the kind name (kopf passes them to the
    storage); kept too, so a field handler added later is never starved of its diff.
    """
    group = api_version.rpartition("/")[0]
    own = DIFFED.get((group, kind))
    if own is None:
        return None
    return frozenset((*own, *handled))


def restrict(essence: Mapping[str, Any], fields: Iterable[FieldPath]) -> dict[str, Any]:
    """The part of ``essence`` at ``fields``, nested as there; absent fields stay absent.

    The values are the essence's own (not copies): kopf builds each essence afresh.
    """
    kept: dict[str, Any] = {}
    for path in fields:
        if not path:  # the whole object
            return dict(essence)
        found, value = _resolve(essence, path)
        if not found:
            continue
        node = kept
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return kept


def _resolve(tree: Mapping[str, Any], path: FieldPath) -> tuple[bool, Any]:
    value: Any = tree
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return False, None
        value = value[key]
    return True, value
