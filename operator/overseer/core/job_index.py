"""The OverseerJobs by (namespace, repository): what a repository sync knows exists.

Pure: the operator's watch of OverseerJobs (:mod:`overseer.operator.job_watch`) hands
every event to :meth:`JobIndex.apply`, which keeps, per job, only what the sync's plan
reads (:class:`overseer.core.sync.ExistingObject`) and says which objects changed, for the
operator to notice them (the scheduler, the reactions' cache). A ``LIST`` (the watch's
first snapshot, or a new one after the server forgot the watch's version) replaces what
the index held in its scope: a job held but absent from the list was deleted meanwhile,
and is reported so, as a ``DELETED`` event would have been.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from overseer.core import sync
from overseer.crd import job as job_crd

Key = tuple[str, str]
"""(namespace, repository)."""
Name = tuple[str, str]
"""(namespace, OverseerJob name)."""
Change = tuple[Mapping[str, Any], bool]
"""An object that changed, and whether it was deleted (then maybe only its metadata)."""


def build_entry(body: Mapping[str, Any]) -> tuple[Key, sync.ExistingObject] | None:
    """Where a job goes in the index, and what is kept of it; None for a job no
    repository owns (no repository label), which no sync reads."""
    metadata = body.get("metadata") or {}
    repository = (metadata.get("labels") or {}).get(job_crd.REPOSITORY_LABEL)
    namespace = metadata.get("namespace")
    if not repository or not namespace:
        return None
    annotations = metadata.get("annotations") or {}
    spec = body.get("spec") or {}
    entry = sync.ExistingObject(
        annotations.get(sync.SPEC_HASH_ANNOTATION),
        annotations.get(sync.SOURCE_FILE_ANNOTATION),
        metadata={"name": metadata["name"]},
        display_name=spec.get("displayName"),
        active=spec.get("active", True) is not False,
    )
    return (namespace, repository), entry


class JobIndex(Mapping[Key, Collection[sync.ExistingObject]]):
    """``index[(namespace, repository)]``: the jobs that repository owns (an empty
    collection for none), as :data:`overseer.core.repository_sync.JobIndex` reads them."""

    def __init__(self) -> None:
        self._by_key: dict[Key, dict[str, sync.ExistingObject]] = {}
        self._where: dict[Name, Key | None] = {}
        """Every job seen, indexed or not: a LIST finds the ones deleted meanwhile."""
        self._listing: dict[str | None, set[Name]] = {}
        """Per scope, the jobs named so far by the snapshot being listed page by page."""

    def __getitem__(self, key: Key) -> Collection[sync.ExistingObject]:
        return self._by_key[key].values()

    def __iter__(self) -> Iterator[Key]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    @property
    def jobs(self) -> int:
        """How many jobs are known, owned by a repository or not."""
        return len(self._where)

    def apply(self, event: str, body: Mapping[str, Any], scope: str | None = None) -> list[Change]:
        """Take one watch event: ``LIST`` (``body`` the list, ``scope`` its namespace or
        None for the whole cluster), or the same snapshot page by page (``LISTING``, each
        ``PAGE``, ``LISTED``: :mod:`overseer.kube_watch`), ``ADDED``, ``MODIFIED`` or
        ``DELETED``; the objects that changed, as :data:`Change`."""
        if event == "LIST":
            self._listing[scope] = set()
            return self._page(body.get("items") or (), scope) + self._listed(scope)
        if event == "LISTING":
            self._listing[scope] = set()
            return []
        if event == "PAGE":
            return self._page(body.get("items") or (), scope)
        if event == "LISTED":
            return self._listed(scope)
        deleted = event == "DELETED"
        metadata = body.get("metadata") or {}
        name = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        if deleted:
            self._drop(name)
        else:
            self._put(name, body)
        return [(body, deleted)]

    def _page(self, items: Collection[Mapping[str, Any]], scope: str | None) -> list[Change]:
        listed = self._listing.setdefault(scope, set())
        changes: list[Change] = []
        for item in items:
            metadata = item.get("metadata") or {}
            name = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
            listed.add(name)
            self._put(name, item)
            changes.append((item, False))
        return changes

    def _listed(self, scope: str | None) -> list[Change]:
        """The snapshot of ``scope`` is whole: a job it did not name was deleted."""
        listed = self._listing.pop(scope, set())
        gone = [
            name
            for name in self._where
            if name not in listed and (scope is None or name[0] == scope)
        ]
        changes: list[Change] = []
        for name in gone:
            self._drop(name)
            changes.append(({"metadata": {"namespace": name[0], "name": name[1]}}, True))
        return changes

    def _put(self, name: Name, body: Mapping[str, Any]) -> None:
        built = build_entry(body)
        key = built[0] if built is not None else None
        if self._where.get(name) != key:
            self._drop(name)
        self._where[name] = key
        if built is not None:
            self._by_key.setdefault(built[0], {})[name[1]] = built[1]

    def _drop(self, name: Name) -> None:
        key = self._where.pop(name, None)
        if key is None:
            return
        owned = self._by_key.get(key)
        if owned is not None:
            owned.pop(name[1], None)
            if not owned:
                del self._by_key[key]
