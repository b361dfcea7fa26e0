"""A store of the newest known state of watched objects, for reads without an API call.

The operator's reactions read an execution, its Job and its pods on every event of any of
them. The watches that deliver those events already carry the objects, and every write
the operator makes answers with the object as written: :class:`ObjectStore` keeps the
newest of the two per object, so a reaction reads it from memory.

Rules that keep reads from going stale:

- a write's answer (:meth:`ObjectStore.wrote`) and a watch event (:meth:`ObjectStore.seen`)
  replace what is kept only when their ``resourceVersion`` is not older (a watch event
  that was in flight while the operator wrote never undoes the write);
- a deletion (``seen(..., deleted=True)``) or a write that found the object gone
  (:meth:`ObjectStore.forget`) removes it: the next read asks the API server;
- what is not kept is a miss (``None`` from :meth:`ObjectStore.get`), never "absent":
  the caller reads through to the API server.

What is kept is the object without ``metadata.managedFields`` (nobody reads them, and
they are a good part of an object's size). Reads share what is kept, as kopf's handlers
share their event's body: no caller may change an object it read (copying every read
cost more CPU than the reads it saves).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import Any

StoreKey = tuple[str, str, str]
"""(kind, namespace, name)."""
FLOORS_KEPT = 50_000
"""How many versions of objects not kept any more are remembered (a few MiB at most)."""


def version_of(body: Mapping[str, Any]) -> int | None:
    """The object's ``resourceVersion`` as a number; None when it has none or not a number.

    Kubernetes calls it opaque; every API server backed by etcd sends the etcd revision,
    a number that grows. Where it is not a number, the newest arrival wins.
    """
    text = (body.get("metadata") or {}).get("resourceVersion")
    try:
        return int(str(text))
    except ValueError:
        return None


def trimmed(body: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in body.items() if k != "metadata"}
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    kept["metadata"] = metadata
    return kept


class ObjectStore:
    """The newest known state of objects of the kinds given, and pods by a label's value."""

    def __init__(
        self,
        kinds: frozenset[str],
        pod_label: str,
        *,
        lasting: Callable[[str, Mapping[str, Any]], bool] = lambda kind, body: True,
        trim: Callable[[str, Mapping[str, Any]], dict[str, Any]] | None = None,
        recent: int = 1000,
    ) -> None:
        """``lasting(kind, body)``: whether an object is kept for as long as it exists; the
        others (an execution that has ended and settled: seldom read again, and there may
        be 10,000) only while they are among the ``recent`` newest such. ``trim(kind,
        body)``: what of an object is kept (the default: all but ``managedFields``)."""
        self.kinds = kinds
        self._lasting = lasting
        self._trim = trim or (lambda kind, body: trimmed(body))
        self._recent_limit = recent
        self._pod_label = pod_label
        self._objects: dict[StoreKey, dict[str, Any]] = {}
        self._recent: collections.OrderedDict[StoreKey, dict[str, Any]] = collections.OrderedDict()
        """Objects not lasting, oldest first."""
        self._pods: dict[tuple[str, str], set[str]] = {}
        """(namespace, label value) -> names of the pods kept with that label."""
        self._floors: dict[StoreKey, int] = {}
        """The version an object not kept any more had: an older state never comes back."""

    def __len__(self) -> int:
        return len(self._objects) + len(self._recent)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as last known (never change it); None when not kept (read it from
        the API)."""
        key = (kind, namespace, name)
        return self._objects.get(key) or self._recent.get(key)

    def pods(self, namespace: str, value: str) -> list[dict[str, Any]] | None:
        """The pods kept whose label has VALUE (never change them); None when none is."""
        names = self._pods.get((namespace, value))
        if not names:
            return None
        return [self._objects[("Pod", namespace, n)] for n in sorted(names)]

    def seen(self, kind: str, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A watch event's object (its last state when ``deleted``)."""
        if deleted:
            metadata = body.get("metadata") or {}
            key = (kind, str(metadata.get("namespace", "")), str(metadata.get("name", "")))
            self._floor(key, version_of(body))
            self.forget(*key)
        else:
            self.wrote(kind, body, first_seen_recent=False)

    def wrote(self, kind: str, body: Mapping[str, Any], *, first_seen_recent: bool = True) -> None:
        """An object as the API server answered a read or a write, or as a watch shows it:
        kept unless what is kept is newer. A watch's object that is not lasting and not
        kept yet (``first_seen_recent=False``: a restart lists 10,000 settled executions)
        is not kept: it is seldom read, and a read asks the API server."""
        if kind not in self.kinds:
            return
        metadata = body.get("metadata") or {}
        key = (kind, str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        kept = self._objects.get(key) or self._recent.get(key)
        if kept is None and not first_seen_recent and not self._lasting(kind, body):
            return
        new = version_of(body)
        floor = self._floors.get(key)
        if new is not None and floor is not None and new <= floor:
            return
        if kept is not None:
            old = version_of(kept)
            if new is not None and old is not None and new < old:
                return
            self.forget(*key)
        trimmed = self._trim(kind, body)
        if self._lasting(kind, body):
            self._objects[key] = trimmed
        else:
            self._recent[key] = trimmed
            while len(self._recent) > self._recent_limit:
                old_key, old_body = self._recent.popitem(last=False)
                self._floor(old_key, version_of(old_body))
                self._unlink_pod(old_key, old_body)
        if kind == "Pod" and (value := (metadata.get("labels") or {}).get(self._pod_label)):
            self._pods.setdefault((key[1], str(value)), set()).add(key[2])

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Not kept any more (deleted, or a write found it gone): the next read asks."""
        key = (kind, namespace, name)
        kept = self._objects.pop(key, None) or self._recent.pop(key, None)
        if kept is not None:
            self._unlink_pod((kind, namespace, name), kept)

    def _floor(self, key: StoreKey, version: int | None) -> None:
        if version is None:
            return
        self._floors[key] = version
        if len(self._floors) > FLOORS_KEPT:  # the oldest half: long settled by now
            for old in list(self._floors)[: FLOORS_KEPT // 2]:
                del self._floors[old]

    def _unlink_pod(self, key: StoreKey, kept: Mapping[str, Any]) -> None:
        if key[0] != "Pod":
            return
        value = ((kept.get("metadata") or {}).get("labels") or {}).get(self._pod_label)
        names = self._pods.get((key[1], str(value)))
        if names is not None:
            names.discard(key[2])
            if not names:
                del self._pods[(key[1], str(value))]
