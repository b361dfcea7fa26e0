"""The cache's stamps: what a read keeps per job (``Cache.memo`` under ``Cache.stamp``)
is derived again after any change to the job or its executions, a full list included."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support import api

from overseer import errors
from overseer.core import schedule
from overseer_api import cache

NS = "default"


def execution(job: dict[str, Any], hour: int, version: int) -> dict[str, Any]:
    body = schedule.build_scheduled_execution(job, datetime(2026, 12, 6, hour, tzinfo=UTC))
    body["metadata"]["resourceVersion"] = str(version)
    return body


def listed(*items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items), "metadata": {}}


def test_a_stamp_changes_with_every_change_of_the_job_or_its_executions() -> None:
    store = cache.Cache(api.WatchFeed(), [NS])
    job = api.job_body({"name": "J", "command": "true"}, version=5)
    other = api.job_body({"name": "Other", "command": "true"}, version=6)
    resource = job["metadata"]["name"]
    store.apply(cache.JOB, NS, "LIST", listed(job, other))
    store.apply(cache.EXECUTION, NS, "LIST", listed(execution(job, 1, 7)))
    seen = [store.stamp(NS, resource)]

    def changed() -> bool:
        seen.append(store.stamp(NS, resource))
        return seen[-1] != seen[-2]

    store.apply(cache.EXECUTION, NS, "LIST", listed(execution(job, 1, 7)))
    assert changed()  # a list may hold anything: nothing kept from before it holds
    store.apply(
        cache.JOB, NS, "MODIFIED", api.job_body({"name": "Other", "command": "x"}, version=8)
    )
    assert not changed()  # another job's change leaves this one's kept answers alone
    store.apply(cache.EXECUTION, NS, "ADDED", execution(job, 2, 9))
    assert changed()
    store.apply(cache.EXECUTION, NS, "DELETED", execution(job, 2, 10))
    assert changed()
    store.apply(cache.JOB, NS, "MODIFIED", api.job_body({"name": "J", "command": "y"}, version=11))
    assert changed()
    store.put(api.job_body({"name": "J", "command": "z"}, version=12))  # the API's own write
    assert changed()
    # A list after a watch gap: the execution deleted meanwhile is simply not in it.
    store.apply(cache.EXECUTION, NS, "LIST", listed())
    assert changed()
    assert store.executions_of(NS, resource) == {}
    store.apply(cache.JOB, NS, "DELETED", job)
    assert changed()


def test_memo_computes_once_per_version() -> None:
    store = cache.Cache(api.WatchFeed(), [NS])
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert store.memo("k", (1, "a"), compute) == 1
    assert store.memo("k", (1, "a"), compute) == 1
    assert store.memo("k", (2, "a"), compute) == 2
    assert store.memo("k", (2, "b"), compute) == 3
    assert store.memo("other", (2, "b"), compute) == 4
    assert len(calls) == 4


async def test_a_bug_in_taking_one_event_does_not_end_the_watch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache, "RETRY_MIN", 0.01)
    feed = api.WatchFeed()
    before = api.job_body({"name": "Before", "command": "true"}, version=5)
    feed.add(cache.JOB, before)
    store = cache.Cache(feed, [NS])

    def held() -> list[str]:
        return [job["metadata"]["name"] for job in store.jobs_after(NS, None)]

    store.start()
    try:
        await eventually(lambda: store.ready)
        # An event the cache cannot take (no name: a bug, or a server gone wrong)...
        await feed.push(
            cache.JOB, "MODIFIED", {"kind": "OverseerJob", "metadata": {"namespace": NS}}
        )
        # ...and the next change is still seen: the watch started again, from a list.
        after = api.job_body({"name": "After", "command": "true"}, version=6)
        await feed.push(cache.JOB, "ADDED", after)
        await eventually(lambda: len(held()) == 2)
        assert held() == [after["metadata"]["name"], before["metadata"]["name"]]
    finally:
        await store.stop()


async def eventually(check: Callable[[], bool], within: float = 2.0) -> None:
    for _ in range(int(within / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 2 s")


def repository(name: str, version: int) -> dict[str, Any]:
    return {
        "kind": cache.REPOSITORY,
        "metadata": {"name": name, "namespace": NS, "resourceVersion": str(version)},
        "spec": {"url": "file:///x"},
    }


def test_repositories_are_a_kind_of_their_own_listed_before_ready() -> None:
    store = cache.Cache(api.WatchFeed(), [NS])
    job = api.job_body({"name": "J", "command": "true"}, version=5)
    store.apply(cache.JOB, NS, "LIST", listed(job))
    store.apply(cache.EXECUTION, NS, "LIST", listed(execution(job, 1, 7)))
    assert not store.ready  # the repositories are not listed yet
    store.apply(cache.REPOSITORY, NS, "LIST", listed(repository("b", 3), repository("a", 4)))
    assert store.ready
    assert [r["metadata"]["name"] for r in store.repositories(NS)] == ["a", "b"]
    assert store.job(NS, "J") == job  # a repository list keeps the jobs and executions
    assert len(store.executions_of(NS, job["metadata"]["name"])) == 1
    store.apply(cache.REPOSITORY, NS, "MODIFIED", repository("a", 2))  # older: ignored
    assert store.repository(NS, "a")["metadata"]["resourceVersion"] == "4"
    store.apply(cache.JOB, NS, "LIST", listed(job))  # a job list keeps the repositories
    store.apply(cache.REPOSITORY, NS, "DELETED", repository("b", 5))
    assert [r["metadata"]["name"] for r in store.repositories(NS)] == ["a"]
    with pytest.raises(errors.RepositoryUnknownError):
        store.repository(NS, "b")
    assert store.sizes()[(cache.REPOSITORY, NS)] == 1
