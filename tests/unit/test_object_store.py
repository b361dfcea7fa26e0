"""The watch cache: the store of objects (pure) and the caching client over a fake client.

The rule under test everywhere: a read never returns something older than what this
process wrote or a watch showed, and what is not kept is read from the API server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from tests.support.fake_kube import FakeKube

from overseer import errors
from overseer.core import object_store
from overseer.operator import watch_cache

LABEL = "overseer.dev/execution"


def obj(kind: str, name: str, version: int, **extra: Any) -> dict[str, Any]:
    metadata = {
        "namespace": "ns",
        "name": name,
        "uid": f"uid-{name}",
        "resourceVersion": str(version),
    }
    metadata.update(extra.pop("metadata", {}))
    return {"kind": kind, "metadata": metadata, **extra}


def pod(name: str, execution: str, version: int) -> dict[str, Any]:
    return obj("Pod", name, version, metadata={"labels": {LABEL: execution}})


def store() -> object_store.ObjectStore:
    return watch_cache.new_store()


def test_a_write_then_a_read_sees_the_write_and_an_older_event_never_undoes_it() -> None:
    kept = store()
    kept.seen("Job", obj("Job", "a", 10, status={"active": 1}))
    kept.wrote("Job", obj("Job", "a", 12, status={"succeeded": 1}))
    kept.seen("Job", obj("Job", "a", 11, status={"active": 1}))  # was in flight
    assert (kept.get("Job", "ns", "a") or {})["status"] == {"succeeded": 1}
    kept.seen("Job", obj("Job", "a", 13, status={"failed": 1}))
    assert (kept.get("Job", "ns", "a") or {})["status"] == {"failed": 1}


def test_a_deleted_object_is_a_miss_and_its_older_states_never_come_back() -> None:
    kept = store()
    kept.seen("Job", obj("Job", "a", 10))
    kept.seen("Job", obj("Job", "a", 11), deleted=True)
    assert kept.get("Job", "ns", "a") is None
    kept.wrote("Job", obj("Job", "a", 10))  # a write's answer that arrived late
    assert kept.get("Job", "ns", "a") is None
    kept.seen("Job", obj("Job", "a", 20))  # made again
    assert kept.get("Job", "ns", "a") is not None


def test_what_is_kept_has_no_managed_fields() -> None:
    kept = store()
    kept.seen("Job", obj("Job", "a", 1, metadata={"managedFields": [{"manager": "x"}]}))
    assert "managedFields" not in (kept.get("Job", "ns", "a") or {})["metadata"]


def test_pods_by_execution_follow_their_events() -> None:
    kept = store()
    assert kept.pods("ns", "e1") is None
    kept.seen("Pod", pod("p1", "e1", 1))
    kept.seen("Pod", pod("p2", "e1", 2))
    kept.seen("Pod", pod("p3", "e2", 3))
    assert [p["metadata"]["name"] for p in kept.pods("ns", "e1") or []] == ["p1", "p2"]
    kept.seen("Pod", pod("p1", "e1", 4), deleted=True)
    assert [p["metadata"]["name"] for p in kept.pods("ns", "e1") or []] == ["p2"]
    kept.seen("Pod", pod("p2", "e1", 5), deleted=True)
    assert kept.pods("ns", "e1") is None


def test_settled_executions_are_kept_only_while_among_the_newest() -> None:
    kind = watch_cache.EXECUTION
    kept = object_store.ObjectStore(
        watch_cache.KINDS, LABEL, lasting=watch_cache.lasting, trim=watch_cache.trim, recent=2
    )
    done = {"phase": "Complete", "archive": {"state": "Complete"}}
    kept.seen(kind, obj(kind, "running", 1, status={"phase": "Running"}))
    for version, name in enumerate(["e1", "e2", "e3"], start=2):
        kept.seen(kind, obj(kind, name, version, status={"phase": "Running"}))
        kept.wrote(kind, obj(kind, name, version + 10, status=done))
    assert kept.get(kind, "ns", "e1") is None  # the oldest settled one went
    assert kept.get(kind, "ns", "e2") is not None
    assert kept.get(kind, "ns", "e3") is not None
    assert kept.get(kind, "ns", "running") is not None  # never dropped while running
    kept.seen(kind, obj(kind, "e1", 2, status={"phase": "Running"}))  # an older event, late
    assert kept.get(kind, "ns", "e1") is None


def test_a_settled_execution_a_watch_shows_first_is_not_kept() -> None:
    kind = watch_cache.EXECUTION
    kept = store()
    done = {"phase": "Complete", "archive": {"state": "Complete"}}
    # Given 10,000 settled executions listed at a restart: none is kept (seldom read again)
    kept.seen(kind, obj(kind, "listed", 5, status=done))
    assert kept.get(kind, "ns", "listed") is None
    assert len(kept) == 0
    # But one that ends while it is kept stays among the newest settled ones
    kept.seen(kind, obj(kind, "ending", 6, status={"phase": "Running"}))
    kept.seen(kind, obj(kind, "ending", 7, status=done))
    assert (kept.get(kind, "ns", "ending") or {})["status"] == done
    # And a read's (or a write's) answer is kept, as before
    kept.wrote(kind, obj(kind, "listed", 5, status=done))
    assert kept.get(kind, "ns", "listed") is not None


def test_an_overseer_job_is_kept_with_only_what_the_reactions_read() -> None:
    kept = store()
    job = obj(
        watch_cache.JOB,
        "j",
        1,
        spec={"active": False, "source": {"repository": "r"}, "definition": {"x": 1}},
        status={"lastExecution": "e", "lastStatus": "Complete", "nextScheduleTime": "t"},
    )
    kept.seen(watch_cache.JOB, job)
    assert kept.get(watch_cache.JOB, "ns", "j") == {
        "metadata": {"namespace": "ns", "name": "j", "uid": "uid-j", "resourceVersion": "1"},
        "spec": {"active": False, "source": {"repository": "r"}},
        "status": {"lastExecution": "e", "lastStatus": "Complete"},
    }


class Cluster(FakeKube):
    """A fake API server with one object per (kind, name), counting the reads."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 100

    def _bump(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        return body

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads[f"get {kind}"] += 1
        return self.objects.get((kind, name))

    async def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        self.reads[f"list {kind}"] += 1
        for (k, _), body in list(self.objects.items()):
            if k == kind and all(
                body["metadata"].get("labels", {}).get(a) == b for a, b in (labels or {}).items()
            ):
                yield body

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        body = self.objects.get((kind, name))
        if body is None:
            raise errors.KubeError(f"{kind} {name} not found", 404)
        body = self._bump({**body, "status": {**body.get("status", {}), **status}})
        self.objects[(kind, name)] = body
        return body


async def test_the_client_reads_through_on_a_miss_and_from_memory_after() -> None:
    cluster = Cluster()
    kind = watch_cache.EXECUTION
    cluster.objects[(kind, "e")] = obj(kind, "e", 100, status={"phase": "Pending"})
    client = watch_cache.CachingKube(cluster, store())
    assert ((await client.get(kind, "ns", "e")) or {})["status"] == {"phase": "Pending"}
    assert ((await client.get(kind, "ns", "e")) or {})["status"] == {"phase": "Pending"}
    assert cluster.reads[f"get {kind}"] == 1
    await client.patch_status(kind, "ns", "e", {"phase": "Running"})
    assert ((await client.get(kind, "ns", "e")) or {})["status"] == {"phase": "Running"}
    assert cluster.reads[f"get {kind}"] == 1
    assert await client.get("Job", "ns", "e") is None  # not kept, not there: asked
    assert cluster.reads["get Job"] == 1


async def test_a_write_that_finds_the_object_gone_forgets_it() -> None:
    cluster = Cluster()
    kind = watch_cache.EXECUTION
    client = watch_cache.CachingKube(cluster, store())
    client.seen(kind, obj(kind, "e", 100, status={"phase": "Running"}))  # deleted since
    with pytest.raises(errors.KubeError):
        await client.patch_status(kind, "ns", "e", {"phase": "Complete"})
    assert await client.get(kind, "ns", "e") is None
    assert cluster.reads[f"get {kind}"] == 1


async def test_pods_are_listed_from_memory_once_a_watch_showed_one() -> None:
    cluster = Cluster()
    cluster.objects[("Pod", "p1")] = pod("p1", "e", 100)
    client = watch_cache.CachingKube(cluster, store())
    listed = [p async for p in client.list("Pod", "ns", {LABEL: "e"})]
    assert [p["metadata"]["name"] for p in listed] == ["p1"]
    client.seen("Pod", pod("p2", "e", 101))
    listed = [p async for p in client.list("Pod", "ns", {LABEL: "e"})]
    assert [p["metadata"]["name"] for p in listed] == ["p1", "p2"]
    assert cluster.reads["list Pod"] == 1


async def test_a_refresh_forgets_what_a_watch_gap_deleted_unseen_and_keeps_what_is_there() -> None:
    cluster = Cluster()
    kind, job = watch_cache.EXECUTION, "e"  # an execution's Job has its name
    cluster.objects[(kind, "e")] = obj(kind, "e", 100, status={"phase": "Running"})
    cluster.objects[("Pod", "p2")] = pod("p2", "e", 120)
    client = watch_cache.CachingKube(cluster, store())
    # What the watches showed before the gap: the execution, its Job, two pods
    client.seen(kind, obj(kind, "e", 100, status={"phase": "Running"}))
    client.seen("Job", obj("Job", job, 101))
    client.seen("Pod", pod("p1", "e", 102))
    client.seen("Pod", pod("p2", "e", 103))
    # The Job and p1 were deleted in the gap; p2 changed
    await client.refresh_execution("ns", "e")
    assert await client.get("Job", "ns", job) is None
    listed = [p async for p in client.list("Pod", "ns", {LABEL: "e"})]
    assert [(p["metadata"]["name"], p["metadata"]["resourceVersion"]) for p in listed] == [
        ("p2", "120")
    ]
    assert ((await client.get(kind, "ns", "e")) or {})["status"] == {"phase": "Running"}
    # A late watch event of the deleted pod brings nothing back
    client.seen("Pod", pod("p1", "e", 102))
    assert [p["metadata"]["name"] async for p in client.list("Pod", "ns", {LABEL: "e"})] == ["p2"]
    # The execution deleted in a gap is forgotten too
    del cluster.objects[(kind, "e")]
    await client.refresh_execution("ns", "e")
    assert await client.get(kind, "ns", "e") is None
